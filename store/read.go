package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// get returns a copy of the value at key, or ErrNotFound.
func (d *DB) get(key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// Account returns the account with its head, or ErrNotFound.
func (d *DB) Account(did string) (*Account, error) {
	cached, gen, ok := d.accounts.get(did)
	if ok {
		return &cached, nil
	}
	v, err := d.get(accountKey(did))
	if err != nil {
		return nil, err
	}
	a, err := decodeAccount(v)
	if err != nil {
		return nil, err
	}
	if a.Head, err = d.head(a.UID); err != nil {
		return nil, err
	}
	d.accounts.put(gen, a)
	return a, nil
}

func (d *DB) head(uid uint64) (Head, error) {
	v, err := d.get(uidKey(tHead, uid))
	if errors.Is(err, ErrNotFound) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, err
	}
	return decodeHead(v)
}

// DIDForHandle returns the DID of the account with this handle.
func (d *DB) DIDForHandle(handle string) (string, error) {
	v, err := d.get(handleKey(handle))
	return string(v), err
}

// Accounts returns up to limit accounts with a UID greater than after, in UID
// (creation) order.
func (d *DB) Accounts(after uint64, limit int) ([]*Account, error) {
	lo := uidKey(tUID, after+1)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{tUID + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var dids []string
	for ok := it.First(); ok && len(dids) < limit; ok = it.Next() {
		dids = append(dids, string(it.Value()))
	}
	if err := closeIter(it); err != nil {
		return nil, err
	}
	out := make([]*Account, 0, len(dids))
	for _, did := range dids {
		a, err := d.Account(did)
		if err != nil {
			return nil, fmt.Errorf("store: account %s: %w", did, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func closeIter(it *pebble.Iterator) error {
	err := it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: iterating: %w", err)
	}
	return nil
}

// Secret returns the signing secrets of a hosted account.
func (d *DB) Secret(uid uint64) ([]byte, error) { return d.get(uidKey(tSecret, uid)) }

// Block returns a block of a repository: live, or superseded but still
// inside the history window. live reports which.
func (d *DB) Block(uid uint64, c cid.Cid) (data []byte, live bool, err error) {
	v, err := d.get(keyUIDCID(tBlock, uid, c))
	if err == nil {
		return v[revLen:], true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	data, err = d.historyBlock(uid, c)
	return data, false, err
}

// LiveBlock returns a live block and the rev that stored it.
func (d *DB) LiveBlock(uid uint64, c cid.Cid) (data []byte, rev string, err error) {
	if data, rev, ok := d.accounts.commitBlock(uid, c); ok {
		return data, rev, nil
	}
	v, err := d.get(keyUIDCID(tBlock, uid, c))
	if err != nil {
		return nil, "", err
	}
	return v[revLen:], string(v[:revLen]), nil
}

// RepoBlocks is a repository's blocks as a block source (live ones first,
// then history), the shape the MST reads through.
type RepoBlocks struct {
	DB  *DB
	UID uint64
}

// GetBlock returns the block's bytes or an error wrapping ErrNotFound.
func (r RepoBlocks) GetBlock(c cid.Cid) ([]byte, error) {
	data, _, err := r.DB.Block(r.UID, c)
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w", c, err)
	}
	return data, nil
}

// LiveBlocks calls fn for every live block of a repository (the current
// commit, its MST nodes and its records), in CID order. The data slice is
// valid only during the call.
func (d *DB) LiveBlocks(uid uint64, fn func(c cid.Cid, data []byte) error) error {
	p := uidKey(tBlock, uid)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		c, err := cid.Cast(it.Key()[len(p):])
		if err != nil {
			it.Close()
			return fmt.Errorf("store: corrupt block key: %w", err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("store: %w", err)
		}
		if err := fn(c, v[revLen:]); err != nil {
			it.Close()
			return err
		}
	}
	return closeIter(it)
}

// HasRecord reports whether the repository has a record at path.
func (d *DB) HasRecord(uid uint64, path string) (bool, error) {
	return d.has(keyUIDString(tRecord, uid, path))
}

// has reports whether key exists, without copying its value.
func (d *DB) has(key []byte) (bool, error) {
	_, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	closer.Close()
	return true, nil
}

// RecordEntry is one record of a listing (its CID is the MST's to say).
type RecordEntry struct {
	RKey string
}

// Records lists up to limit records of a collection, by rkey ascending
// after cursor (or descending before cursor when reverse is set). An empty
// cursor starts at the beginning (or the end).
func (d *DB) Records(uid uint64, collection, cursor string, limit int, reverse bool) ([]RecordEntry, error) {
	p := keyUIDString(tRecord, uid, collection+"/")
	opts := &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)}
	if cursor != "" {
		if reverse {
			opts.UpperBound = append(append([]byte(nil), p...), cursor...)
		} else {
			opts.LowerBound = append(append(append([]byte(nil), p...), cursor...), 0)
		}
	}
	it, err := d.db.NewIter(opts)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []RecordEntry
	step := it.Next
	ok := it.First()
	if reverse {
		step, ok = it.Prev, it.Last()
	}
	for ; ok && len(out) < limit; ok = step() {
		out = append(out, RecordEntry{RKey: string(it.Key()[len(p):])})
	}
	return out, closeIter(it)
}

// RefCount returns how many record paths of the repository point at the
// record c: the stored count when above one, else one if the block is live
// and zero if not. The live-block lookup comes first: for a record written
// for the first time (nearly every created record) it is the only one, and
// the bloom filters answer it.
func (d *DB) RefCount(uid uint64, c cid.Cid) (uint64, error) {
	if live, err := d.hasLikelyAbsent(keyUIDCID(tBlock, uid, c)); err != nil || !live {
		return 0, err
	}
	return d.ReferencedCount(uid, c)
}

// ReferencedCount is RefCount for a record the caller knows at least one
// path points at (the previous record of an update or a deletion, read from
// the repository's tree): one lookup, the stored count or one.
func (d *DB) ReferencedCount(uid uint64, c cid.Cid) (uint64, error) {
	n, err := d.getUvarint(keyUIDCID(tRefCount, uid, c))
	if err != nil {
		return 0, err
	}
	return max(n, 1), nil
}

// CollectionCount returns how many records the repository has in collection.
func (d *DB) CollectionCount(uid uint64, collection string) (uint64, error) {
	n, gen, ok := d.accounts.collection(uid, collection)
	if ok {
		return n, nil
	}
	n, err := d.getUvarint(keyUIDString(tCollCount, uid, collection))
	if err != nil {
		return 0, err
	}
	d.accounts.putCollection(gen, uid, collection, n)
	return n, nil
}

func (d *DB) getUvarint(key []byte) (uint64, error) {
	v, err := d.get(key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0, fmt.Errorf("store: corrupt counter at %q", key)
	}
	return n, nil
}

// Collections returns the collections the repository has records in, with
// their record counts, in name order.
func (d *DB) Collections(uid uint64) (map[string]uint64, []string, error) {
	p := uidKey(tCollCount, uid)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	counts := map[string]uint64{}
	var names []string
	for ok := it.First(); ok; ok = it.Next() {
		n, _ := binary.Uvarint(it.Value())
		name := string(it.Key()[len(p):])
		counts[name] = n
		names = append(names, name)
	}
	return counts, names, closeIter(it)
}

// ReposByCollection returns up to limit UIDs of repositories with records in
// collection, in UID order, after the UID after. CollectionRepos adds each
// one's DID and status.
func (d *DB) ReposByCollection(collection string, after uint64, limit int) ([]uint64, error) {
	return scanCollection(d.db, collection, after, limit)
}

// DIDForUID returns the DID of a UID.
func (d *DB) DIDForUID(uid uint64) (string, error) {
	v, err := d.get(uidKey(tUID, uid))
	return string(v), err
}

// Events calls fn for every event with a seq greater than after, in order,
// until fn returns an error (ErrStop ends quietly). The frame is valid only
// during the call.
func (d *DB) Events(after int64, fn func(e CommittedEvent) error) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(after + 1), UpperBound: []byte{tEvent + 1}})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		ev, err := decodeEvent(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(ev); err != nil {
			it.Close()
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return closeIter(it)
}

// ErrStop ends an iteration early without error.
var ErrStop = errors.New("stop")

// EventSeqs returns the seqs of an account's events still in the log.
func (d *DB) EventSeqs(uid uint64) ([]int64, error) {
	p := uidKey(tEventByUID, uid)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []int64
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, int64(binary.BigEndian.Uint64(it.Key()[len(p):])))
	}
	return out, closeIter(it)
}

// FirstSeq returns the oldest seq still in the log (0 when it is empty).
func (d *DB) FirstSeq() (int64, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tEvent}, UpperBound: []byte{tEvent + 1}})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var seq int64
	if it.First() {
		seq = int64(binary.BigEndian.Uint64(it.Key()[1:]))
	}
	return seq, closeIter(it)
}

func decodeEvent(key, v []byte) (CommittedEvent, error) {
	if len(key) != 9 || len(v) < 16 {
		return CommittedEvent{}, errors.New("store: corrupt event")
	}
	return CommittedEvent{
		Seq:   int64(binary.BigEndian.Uint64(key[1:])),
		Time:  timeFromNanos(binary.BigEndian.Uint64(v)),
		UID:   binary.BigEndian.Uint64(v[8:]),
		Frame: v[16:],
	}, nil
}

// collectionOf returns the collection part of a record path.
func collectionOf(path string) string {
	c, _, _ := strings.Cut(path, "/")
	return c
}

// RepoAtHead reads a repository's head, its commit block and its live
// blocks (all of them, or those stored after since when since is set) from
// one view of the store, so a commit landing meanwhile cannot mix states:
// head gets the head and its commit block before any other block is
// passed to fn (the head commit is not passed again). It returns
// ErrNotFound when the repository has no head, or no live blocks (a lean
// copy).
func (d *DB) RepoAtHead(uid uint64, since string, head func(h Head, commit []byte) error, fn func(cidBytes, data []byte) error) error {
	hk := uidKey(tHead, uid)
	p := uidKey(tBlock, uid)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: hk, UpperBound: prefixEnd(p)})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = func() error {
		if !it.SeekGE(hk) || !bytes.Equal(it.Key(), hk) {
			return ErrNotFound
		}
		h, err := decodeHead(it.Value())
		if err != nil {
			return err
		}
		ck := append(bytes.Clone(p), h.Commit.KeyString()...)
		if !it.SeekGE(ck) || !bytes.Equal(it.Key(), ck) {
			return fmt.Errorf("store: uid %d: head commit %s: %w", uid, h.Commit, ErrNotFound)
		}
		v, err := it.ValueAndErr()
		if err != nil || len(v) < revLen {
			return fmt.Errorf("store: head commit block: corrupt value (%v)", err)
		}
		if err := head(h, v[revLen:]); err != nil {
			return err
		}
		for ok := it.SeekGE(p); ok; ok = it.Next() {
			k := it.Key()
			if bytes.Equal(k, ck) {
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if len(v) < revLen {
				return errors.New("store: corrupt block value")
			}
			if since != "" && string(v[:revLen]) <= since {
				continue
			}
			if err := fn(k[len(p):], v[revLen:]); err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := closeIter(it); err == nil {
		err = cerr
	}
	return err
}
