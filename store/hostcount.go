package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Accounts per upstream host (listHosts' accountCount), kept exact by the
// committer: table 15 holds, per hostname, the number of account records
// whose Host is that hostname and whose status is not deleted — what
// CountAccountsByHost counts by reading every record. A change that writes
// an account record (a mirrored account created, moved to another host,
// deleted) moves the counts in the same batch. Changes without an account
// record (commits of existing accounts: the hot path) cost nothing; one
// with a record costs a read of the old record, and each host touched in
// the group one read and one write of its count.

const tHostAccounts byte = 0x15 // hostname → uvarint: accounts per upstream host

// metaHostCounts marks table 15 as built (version 1); a store without it
// has it counted at Open.
var metaHostCounts = []byte{tMeta, 'h', 'o', 's', 't', 'c', 'n', 't'}

const hostCountsVersion = 1

func hostAccountsKey(hostname string) []byte { return append([]byte{tHostAccounts}, hostname...) }

// countedHost is the host an account record counts for, "" for none.
func countedHost(host []byte, status Status) string {
	if len(host) == 0 || status == StatusDeleted {
		return ""
	}
	return string(host)
}

// hostTracker gathers the count changes of one commit group.
type hostTracker struct {
	d     *DB
	delta map[string]int64
}

func newHostTracker(d *DB) *hostTracker { return &hostTracker{d: d, delta: map[string]int64{}} }

// hostMove is what one change does to the counts: the host its account
// counted for before and the one after ("" for none).
type hostMove struct{ before, now string }

// plan reads what the account record c writes replaces (nothing when
// created is set: the account is new in this group). One writer per
// account means no other change of the group touches the same record.
func (t *hostTracker) plan(c *Change, created bool) (hostMove, error) {
	a := c.Account
	if a == nil {
		return hostMove{}, nil
	}
	m := hostMove{now: countedHost([]byte(a.Host), a.Status)}
	if created {
		return m, nil
	}
	v, closer, err := t.d.db.Get(accountKey(a.DID))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return m, nil
	case err != nil:
		return m, fmt.Errorf("store: reading the account record of %s: %w", a.DID, err)
	}
	defer closer.Close()
	host, status, err := accountHostStatus(v)
	if err != nil {
		return m, fmt.Errorf("store: account %s: %w", a.DID, err)
	}
	m.before = countedHost(host, status)
	return m, nil
}

// apply counts a planned move, once its change is in the batch.
func (t *hostTracker) apply(m hostMove) {
	if m.before == m.now {
		return
	}
	if m.before != "" {
		t.delta[m.before]--
	}
	if m.now != "" {
		t.delta[m.now]++
	}
}

// flush writes the counts the group moved.
func (t *hostTracker) flush(b *pebble.Batch) error {
	for host, d := range t.delta {
		if d == 0 {
			continue
		}
		cur, err := t.d.hostAccountCount(host)
		if err != nil {
			return err
		}
		n := cur + d
		if n <= 0 {
			b.Delete(hostAccountsKey(host), nil)
		} else {
			b.Set(hostAccountsKey(host), binary.AppendUvarint(nil, uint64(n)), nil)
		}
	}
	return nil
}

func (d *DB) hostAccountCount(hostname string) (int64, error) {
	v, closer, err := d.db.Get(hostAccountsKey(hostname))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading the account count of %s: %w", hostname, err)
	}
	defer closer.Close()
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0, fmt.Errorf("store: account count of %s: corrupt value", hostname)
	}
	return int64(n), nil
}

// HostAccountCount is the number of accounts (not deleted) whose host is
// hostname, as of the last committed change.
func (d *DB) HostAccountCount(hostname string) (int64, error) { return d.hostAccountCount(hostname) }

// HostAccountCounts returns the account count of every host that has
// accounts (one scan of table 15, a key per host).
func (d *DB) HostAccountCounts() (map[string]int64, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tHostAccounts}, UpperBound: []byte{tHostAccounts + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := map[string]int64{}
	for ok := it.First(); ok; ok = it.Next() {
		n, k := binary.Uvarint(it.Value())
		if k <= 0 {
			it.Close()
			return nil, fmt.Errorf("store: account count of %s: corrupt value", it.Key()[1:])
		}
		out[string(it.Key()[1:])] = int64(n)
	}
	return out, closeIter(it)
}

// ensureHostCounts counts table 15 from the account records when the store
// predates it. It runs in Open before the committer starts, so no change
// interleaves; the marker is written in the same batch as the counts.
func (d *DB) ensureHostCounts() error {
	v, err := d.getUint(metaHostCounts)
	if err != nil {
		return err
	}
	switch {
	case v == hostCountsVersion:
		return nil
	case v > hostCountsVersion:
		return fmt.Errorf("store: host count version %d is newer than this program's %d", v, hostCountsVersion)
	}
	counts, err := d.CountAccountsByHost()
	if err != nil {
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	b.DeleteRange([]byte{tHostAccounts}, []byte{tHostAccounts + 1}, nil)
	for host, n := range counts {
		b.Set(hostAccountsKey(host), binary.AppendUvarint(nil, uint64(n)), nil)
	}
	b.Set(metaHostCounts, binary.BigEndian.AppendUint64(nil, hostCountsVersion), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: counting accounts per host: %w", err)
	}
	return nil
}
