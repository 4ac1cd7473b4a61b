package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// HostStatus is the state of an upstream host the relay crawls
// (com.atproto.sync.defs#hostStatus, sync-spec §7.2).
type HostStatus string

const (
	// HostActive: subscribed, or to be subscribed (again after a restart).
	HostActive HostStatus = "active"
	// HostIdle: not subscribed until the next requestCrawl (the host
	// answered FutureCursor).
	HostIdle HostStatus = "idle"
	// HostOffline: repeated connection failures; still retried, slowly.
	HostOffline HostStatus = "offline"
	// HostThrottled: over its events-per-second limit; reading is delayed.
	HostThrottled HostStatus = "throttled"
	// HostBanned: banned by the admin; not subscribed, requestCrawl refused.
	HostBanned HostStatus = "banned"
)

// ParseHostStatus accepts the known host statuses.
func ParseHostStatus(s string) (HostStatus, error) {
	switch st := HostStatus(s); st {
	case HostActive, HostIdle, HostOffline, HostThrottled, HostBanned:
		return st, nil
	}
	return "", fmt.Errorf("store: unknown host status %q", s)
}

// NoCursor is Host.Cursor when no upstream event of the host has been
// processed yet: the subscription starts live, without a cursor.
const NoCursor int64 = -1

// HostLimits are an upstream host's limits; zero means the relay's default.
type HostLimits struct {
	EventsPerSecond int64
	MaxAccounts     int64
}

// Host is an upstream host (a PDS or another relay) the relay crawls.
type Host struct {
	// ID is assigned by the store when the host is first put, in the order
	// hosts are first seen; listHosts pages by it.
	ID uint64
	// Hostname is the host's name, lower case, with a port only where one
	// is needed (no scheme). It never changes.
	Hostname string
	Status   HostStatus
	// Cursor is the last upstream seq whose event, and every event before
	// it, was durably processed; NoCursor when none was.
	Cursor int64
	// AccountCount is the number of mirrored accounts of the host, not
	// counting deleted ones, as last recounted (CountAccountsByHost).
	AccountCount int64
	Limits       HostLimits
	// NoSSL: the host is reached over http:// and ws:// (allowed only with
	// --allow-insecure-hosts).
	NoSSL       bool
	CreatedAt   time.Time
	LastEventAt time.Time // zero until the first event
	// Failures counts connection attempts that failed since the last
	// successful one.
	Failures int64
	// BackfillCursor is the listRepos cursor of the host's backfill (the
	// fetch of every repository it had when it was first crawled): the
	// repositories before it are done. BackfillDone is set at the end.
	BackfillCursor string
	BackfillDone   bool
}

// Tables of upstream hosts (doc.go's key layout).
const (
	tHost     byte = 0x13 // id → host record
	tHostname byte = 0x14 // hostname → id
)

// metaHostID holds the last host ID assigned.
var metaHostID = []byte{tMeta, 'h', 'o', 's', 't', 'i', 'd'}

// hostWrites serializes PutHosts calls of the process. A host write is a
// committer job that reads the host tables and then writes them; two such
// jobs in one group commit would both read the state before the group, so
// they are kept in separate groups. Host writes are rare (a requestCrawl, an
// admin action, a cursor flush per second for all hosts), so one lock for
// every DB costs nothing.
var hostWrites sync.Mutex

// PutHosts writes hosts through the committer, in one batch: all of them or
// none. A host with ID 0 is created: the store assigns its ID (set in the
// Host on success) and refuses a hostname it already has (ErrExists). A host
// with an ID replaces the record of that ID, whose hostname must match
// (ErrNotFound otherwise). Values are absolute: the caller (the relay's host
// manager, the only writer of hosts) keeps the current state.
func (d *DB) PutHosts(ctx context.Context, hosts ...*Host) error {
	for _, h := range hosts {
		if err := checkHost(h); err != nil {
			return err
		}
	}
	hostWrites.Lock()
	defer hostWrites.Unlock()
	var ids []uint64
	job := func(b *pebble.Batch) error {
		var created bool
		var err error
		ids, created, err = d.planHosts(hosts)
		if err != nil {
			return err
		}
		for i, h := range hosts {
			id := ids[i]
			c := *h
			c.ID = id
			b.Set(hostKey(id), encodeHost(&c), nil)
			if h.ID == 0 {
				b.Set(hostnameKey(h.Hostname), binary.BigEndian.AppendUint64(nil, id), nil)
			}
		}
		if created {
			b.Set(metaHostID, binary.BigEndian.AppendUint64(nil, slices.Max(ids)), nil)
		}
		return nil
	}
	if _, err := d.submit(ctx, &request{job: job, done: make(chan result, 1)}); err != nil {
		return fmt.Errorf("store: putting hosts: %w", err)
	}
	for i, h := range hosts {
		h.ID = ids[i]
	}
	return nil
}

// PutHost is PutHosts of one host.
func (d *DB) PutHost(ctx context.Context, h *Host) error { return d.PutHosts(ctx, h) }

func checkHost(h *Host) error {
	if h.Hostname == "" || len(h.Hostname) > 253+6 {
		return fmt.Errorf("store: host name %q: empty or too long", h.Hostname)
	}
	if _, err := ParseHostStatus(string(h.Status)); err != nil {
		return err
	}
	if h.Cursor < NoCursor {
		return fmt.Errorf("store: host %s: cursor %d below %d", h.Hostname, h.Cursor, NoCursor)
	}
	return nil
}

// planHosts checks every host against the store before anything is written
// (a failing job must leave the batch untouched) and returns their IDs, new
// ones assigned after the last ID given; created reports whether there are
// new ones.
func (d *DB) planHosts(hosts []*Host) (ids []uint64, created bool, err error) {
	next, err := d.getUint(metaHostID)
	if err != nil {
		return nil, false, err
	}
	ids = make([]uint64, len(hosts))
	names := make(map[string]bool, len(hosts))
	for i, h := range hosts {
		if names[h.Hostname] {
			return nil, false, fmt.Errorf("store: host %s put twice in one call", h.Hostname)
		}
		names[h.Hostname] = true
		v, err := d.get(hostnameKey(h.Hostname))
		switch {
		case h.ID == 0 && err == nil:
			return nil, false, fmt.Errorf("store: creating host %s: %w", h.Hostname, ErrExists)
		case h.ID == 0 && errors.Is(err, ErrNotFound):
			next++
			ids[i], created = next, true
		case err != nil:
			return nil, false, fmt.Errorf("store: host %s: %w", h.Hostname, err)
		case len(v) != 8 || binary.BigEndian.Uint64(v) != h.ID:
			return nil, false, fmt.Errorf("store: host %s has no ID %d: %w", h.Hostname, h.ID, ErrNotFound)
		default:
			ids[i] = h.ID
		}
	}
	return ids, created, nil
}

// Host returns the host with this hostname, or ErrNotFound.
func (d *DB) Host(hostname string) (*Host, error) {
	v, err := d.get(hostnameKey(hostname))
	if err != nil {
		return nil, err
	}
	if len(v) != 8 {
		return nil, fmt.Errorf("store: host %s: corrupt name entry", hostname)
	}
	rec, err := d.get(hostKey(binary.BigEndian.Uint64(v)))
	if err != nil {
		return nil, fmt.Errorf("store: host %s: %w", hostname, err)
	}
	return decodeHost(rec)
}

// Hosts returns up to limit hosts with an ID greater than afterID, in ID
// (first-seen) order.
func (d *DB) Hosts(afterID uint64, limit int) ([]*Host, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: hostKey(afterID + 1), UpperBound: []byte{tHost + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []*Host
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		h, err := decodeHost(it.Value())
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, h)
	}
	return out, closeIter(it)
}

// CountAccountsByHost counts the mirrored accounts of every upstream host
// (Account.Host), leaving out deleted ones (sync-spec §7.2). It reads every
// account record — one pass over table 01 that decodes only the host and
// status fields — so it is meant for a periodic recount, not for each
// request: about a second per million accounts.
func (d *DB) CountAccountsByHost() (map[string]int64, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tAccount}, UpperBound: []byte{tAccount + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	counts := map[string]int64{}
	for ok := it.First(); ok; ok = it.Next() {
		host, status, err := accountHostStatus(it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("store: account %s: %w", it.Key()[1:], err)
		}
		if len(host) > 0 && status != StatusDeleted {
			counts[string(host)]++
		}
	}
	return counts, closeIter(it)
}

// accountHostStatus reads the host and status fields of an account record
// without decoding the rest. host aliases rec.
func accountHostStatus(rec []byte) (host []byte, status Status, err error) {
	dec := dagcbor.NewDecoder(rec)
	n, err := dec.ReadMapHeader()
	if err != nil {
		return nil, "", err
	}
	var prev []byte
	for range n {
		k, err := dec.ReadMapKey(prev)
		if err != nil {
			return nil, "", err
		}
		prev = k
		switch string(k) {
		case "host":
			host, err = dec.ReadTextBytes()
		case "status":
			var s []byte
			s, err = dec.ReadTextBytes()
			status = Status(s)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return nil, "", err
		}
	}
	return host, status, nil
}

func hostKey(id uint64) []byte { return uidKey(tHost, id) }

func hostnameKey(name string) []byte { return append([]byte{tHostname}, name...) }

// encodeHost writes a host record as a DAG-CBOR map (the ID is its key;
// it is kept in the record too so a record read alone is complete).
func encodeHost(h *Host) []byte {
	m := map[string]any{
		"id":           int64(h.ID),
		"hostname":     h.Hostname,
		"status":       string(h.Status),
		"cursor":       h.Cursor,
		"accountCount": h.AccountCount,
		"eps":          h.Limits.EventsPerSecond,
		"maxAccounts":  h.Limits.MaxAccounts,
		"noSSL":        h.NoSSL,
		"createdAt":    h.CreatedAt.UnixMicro(),
		"failures":     h.Failures,
	}
	if !h.LastEventAt.IsZero() {
		m["lastEventAt"] = h.LastEventAt.UnixMicro()
	}
	if h.BackfillCursor != "" {
		m["backfillCursor"] = h.BackfillCursor
	}
	if h.BackfillDone {
		m["backfillDone"] = true
	}
	b, err := dagcbor.Marshal(m)
	if err != nil {
		panic("store: encoding a host: " + err.Error()) // only strings, ints and bools
	}
	return b
}

func decodeHost(b []byte) (*Host, error) {
	v, err := dagcbor.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("store: decoding host: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("store: decoding host: not a map")
	}
	num := func(k string) int64 { n, _ := m[k].(int64); return n }
	h := &Host{
		ID:           uint64(num("id")),
		Cursor:       num("cursor"),
		AccountCount: num("accountCount"),
		Limits:       HostLimits{EventsPerSecond: num("eps"), MaxAccounts: num("maxAccounts")},
		CreatedAt:    time.UnixMicro(num("createdAt")).UTC(),
		Failures:     num("failures"),
	}
	h.Hostname, _ = m["hostname"].(string)
	status, _ := m["status"].(string)
	h.Status = HostStatus(status)
	h.NoSSL, _ = m["noSSL"].(bool)
	h.BackfillCursor, _ = m["backfillCursor"].(string)
	h.BackfillDone, _ = m["backfillDone"].(bool)
	if t := num("lastEventAt"); t != 0 {
		h.LastEventAt = time.UnixMicro(t).UTC()
	}
	if h.ID == 0 || h.Hostname == "" {
		return nil, errors.New("store: decoding host: missing id or hostname")
	}
	return h, nil
}
