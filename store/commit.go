package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrExists is returned when a change creates an account whose DID the store
// already has.
var ErrExists = errors.New("account already exists")

// ErrHandleTaken is returned when a change gives an account a handle that
// another account has.
var ErrHandleTaken = errors.New("handle taken")

// commitLoop is the committer: it takes the first waiting change, adds as
// many more as are queued (up to MaxGroup), writes them in one batch with
// one fsync, then answers them all. Seqs are assigned here, in commit order.
//
// The fsync is waited for by completeLoop, so the committer builds and
// applies the next group while the previous one's write-ahead log reaches
// the disk: a group is visible to reads once applied, as in Pebble's own
// synced commits (the account cache follows it then), and its changes are
// answered, its events published and LastSeq moved only once it is
// durable, in commit order. A later group read what an earlier one wrote,
// so a failed sync fails every group after it too, and the store takes no
// more changes (errBroken).
func (d *DB) commitLoop() {
	defer d.wg.Done()
	pending := make(chan *pendingGroup, maxPendingGroups)
	completed := make(chan struct{})
	go func() {
		defer close(completed)
		d.completeLoop(pending)
	}()
	defer func() {
		close(pending)
		<-completed
	}()
	group := make([]*request, 0, d.opts.MaxGroup)
	for {
		select {
		case r := <-d.reqs:
			group = append(group[:0], r)
		case <-d.closing:
			// Submitters are gone (Close holds the lock); commit what is queued.
			for {
				select {
				case r := <-d.reqs:
					if p := d.commitGroup([]*request{r}); p != nil {
						pending <- p
					}
				default:
					return
				}
			}
		}
	fill:
		for len(group) < d.opts.MaxGroup {
			select {
			case r := <-d.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		if p := d.commitGroup(group); p != nil {
			pending <- p
		}
		group = make([]*request, 0, d.opts.MaxGroup) // the pending group keeps the old one
	}
}

// maxPendingGroups bounds the groups applied and waiting for their fsync.
const maxPendingGroups = 2

// errBroken is returned for every change once a group's sync has failed.
var errBroken = errors.New("store: a commit failed to reach the disk; the store takes no more changes")

// pendingGroup is a group applied to Pebble whose sync completeLoop waits
// for before answering it.
type pendingGroup struct {
	b       *pebble.Batch
	group   []*request
	results []result
	events  []CommittedEvent
	seq     int64
}

// completeLoop waits for each pending group's sync, in commit order, and
// then publishes it: LastSeq, OnCommit, the answers.
func (d *DB) completeLoop(pending <-chan *pendingGroup) {
	for p := range pending {
		err := p.b.SyncWait()
		if err == nil && d.broken.Load() {
			err = errBroken
		}
		p.b.Close()
		if err != nil {
			d.broken.Store(true)
			err = fmt.Errorf("store: commit: %w", err)
			d.log.Error("group commit failed", "err", err, "changes", len(p.group))
			for _, req := range p.group {
				req.done <- result{err: err}
			}
			continue
		}
		d.lastSeq.Store(p.seq)
		// The ring hears of the events before the writers are answered, so
		// once Apply returns its events are there for every subscriber.
		if len(p.events) > 0 && d.opts.OnCommit != nil {
			d.opts.OnCommit(p.events)
		}
		for i, req := range p.group {
			req.done <- p.results[i]
		}
	}
}

// maxBatchHint bounds the size a group's batch is allocated with up front.
const maxBatchHint = 16 << 20

// commitGroup applies a group of requests in one batch and returns it for
// completeLoop to answer once durable (nil when it answered the group
// itself). A change refused on its own (ErrExists) is answered alone and
// left out; an error of the batch itself fails the whole group and changes
// nothing.
func (d *DB) commitGroup(group []*request) *pendingGroup {
	if d.broken.Load() {
		for _, req := range group {
			req.done <- result{err: errBroken}
		}
		return nil
	}
	// Sized like the previous group's batch: a group of relay commits is a
	// few MiB, which a batch grown by doubling from Pebble's default
	// allocated about twice over (a fifth of the relay's allocated bytes).
	b := d.db.NewBatchWithSize(min(d.lastBatchSize, maxBatchHint))
	seq := d.nextSeq
	uid := d.nextUID
	now := d.opts.Now()
	var events []CommittedEvent
	results := make([]result, len(group))
	creating := map[string]bool{}
	handles := map[string]string{} // handle → DID claimed in this group
	colls := newCollTracker(d)
	hosts := newHostTracker(d) // accounts per upstream host (hostcount.go)
	changes := make([]*Change, len(group))
	applied := make([]bool, len(group))
	fresh := make([]bool, len(group)) // the change creates its account
	for i, req := range group {
		if req.job != nil {
			results[i].err = req.job(b)
			continue
		}
		c := req.change
		created := c.Account != nil && c.Account.UID == 0
		if created {
			// A new DID is nearly always absent: the bottom level's
			// filters answer (filters.go). A failed read fails the change
			// rather than risk creating a second account.
			found := creating[c.Account.DID]
			if !found {
				var err error
				if found, err = d.hasLikelyAbsent(accountKey(c.Account.DID)); err != nil {
					results[i].err = fmt.Errorf("store: creating %s: %w", c.Account.DID, err)
					continue
				}
			}
			if found {
				results[i].err = fmt.Errorf("store: creating %s: %w", c.Account.DID, ErrExists)
				continue
			}
			creating[c.Account.DID] = true
			fresh[i] = true
			uid++
			c.Account.UID = uid
			c.UID = uid
		}
		if c.UID == 0 {
			results[i].err = errors.New("store: change names no account")
			continue
		}
		if a := c.Account; a != nil && a.Handle != "" && a.Handle != c.OldHandle {
			owner, claimed := handles[a.Handle]
			if !claimed {
				if v, err := d.get(handleKey(a.Handle)); err == nil {
					owner, claimed = string(v), true
				}
			}
			if claimed && owner != a.DID {
				results[i].err = fmt.Errorf("store: handle %s: %w", a.Handle, ErrHandleTaken)
				continue
			}
			handles[a.Handle] = a.DID
		}
		results[i].res.UID = c.UID
		if err := checkChange(c); err != nil {
			results[i].err = err
			continue
		}
		hm, err := hosts.plan(c, created)
		if err != nil {
			results[i].err = err
			continue
		}
		moves, err := colls.plan(c)
		if err != nil {
			results[i].err = fmt.Errorf("store: change to uid %d: %w", c.UID, err)
			continue
		}
		seqs, evs := writeChange(b, c, seq, now)
		for _, k := range req.copies {
			b.Delete(k, nil)
		}
		colls.apply(b, moves)
		hosts.apply(hm)
		seq += int64(len(seqs))
		results[i].res.Seqs = seqs
		events = append(events, evs...)
		changes[i], applied[i] = c, true
	}
	b.Set(metaSeq, binary.BigEndian.AppendUint64(nil, uint64(seq)), nil)
	b.Set(metaUID, binary.BigEndian.AppendUint64(nil, uid), nil)
	err := colls.flush(b)
	if err == nil {
		err = hosts.flush(b)
	}
	if err == nil {
		// Applied now, durable once completeLoop's SyncWait returns.
		err = d.db.ApplyNoSyncWait(b, pebble.Sync)
	}
	d.lastBatchSize = len(b.Repr())
	if err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		d.log.Error("group commit failed", "err", err, "changes", len(group))
		b.Close()
		for _, req := range group {
			req.done <- result{err: err}
		}
		return nil
	}
	d.nextUID = uid
	d.nextSeq = seq
	// The account cache follows what reads of the store see, which is the
	// group as soon as it is applied: a reader taking a head from the cache
	// and blocks from the store must not find the blocks of a newer head
	// (getRepo answered 500 when the cache waited for the fsync).
	d.accounts.committed(changes, applied, fresh)
	return &pendingGroup{b: b, group: group, results: results, events: events, seq: seq}
}

// checkChange refuses a malformed change before any of it is written.
func checkChange(c *Change) error {
	if a := c.Account; a != nil && a.UID != c.UID {
		return fmt.Errorf("store: change for uid %d carries the account of uid %d", c.UID, a.UID)
	}
	if h := c.Head; h != nil && len(h.Rev) != revLen {
		return fmt.Errorf("store: head rev %q is not a TID", h.Rev)
	}
	if c.Head == nil && len(c.NewBlocks) > 0 {
		return errors.New("store: new blocks without a new head")
	}
	if c.DropContent && (len(c.NewBlocks) > 0 || len(c.Dead) > 0 || len(c.Records) > 0 || len(c.RefCounts) > 0 || len(c.Blobs) > 0) {
		return errors.New("store: a change that drops the content carries content")
	}
	return nil
}

// writeChange adds one checked change to the batch. It only writes; every
// value it needs is in the change.
func writeChange(b *pebble.Batch, c *Change, seq int64, now time.Time) ([]int64, []CommittedEvent) {
	uid := c.UID
	if a := c.Account; a != nil {
		b.Set(accountKey(a.DID), encodeAccount(a), nil)
		b.Set(uidKey(tUID, uid), []byte(a.DID), nil)
		if c.OldHandle != "" && c.OldHandle != a.Handle {
			b.Delete(handleKey(c.OldHandle), nil)
		}
		if a.Handle != "" {
			b.Set(handleKey(a.Handle), []byte(a.DID), nil)
		}
		writeAccountStatus(b, a)
	}
	if c.Delete {
		// The account's copies in table 07, ordered by time, are deleted
		// by the keys Apply read from the index (DB.historyCopies).
		for _, t := range []byte{tHead, tBlock, tHistIndex, tRecord, tRefCount, tCollCount, tSecret, tBlob} {
			p := uidKey(t, uid)
			b.DeleteRange(p, prefixEnd(p), nil)
		}
	} else if c.DropContent {
		for _, t := range []byte{tBlock, tHistIndex, tRecord, tRefCount, tBlob} {
			p := uidKey(t, uid)
			b.DeleteRange(p, prefixEnd(p), nil)
		}
	} else if c.ResetRecords {
		for _, t := range []byte{tRecord, tRefCount} {
			p := uidKey(t, uid)
			b.DeleteRange(p, prefixEnd(p), nil)
		}
	}
	if c.Secret != nil {
		b.Set(uidKey(tSecret, uid), c.Secret, nil)
	}
	// Block keys are built in one scratch buffer (the batch copies keys),
	// and block values written in place in the batch (SetDeferred): the
	// committer is serial, and these were most of its allocations.
	var key []byte
	died := now.UnixNano()
	for _, blk := range c.Dead {
		key = appendKeyUIDCID(key[:0], tBlock, uid, blk.CID)
		b.Delete(key, nil)
		key = appendHistIndexKey(key[:0], uid, blk.CID, died)
		b.Set(key, nil, nil)
		key = appendHistoryKey(key[:0], died, uid, blk.CID)
		op := b.SetDeferred(len(key), len(blk.Data))
		copy(op.Key, key)
		copy(op.Value, blk.Data)
		op.Finish()
	}
	if h := c.Head; h != nil {
		b.Set(uidKey(tHead, uid), encodeHead(*h), nil)
		for _, blk := range c.NewBlocks {
			key = appendKeyUIDCID(key[:0], tBlock, uid, blk.CID)
			op := b.SetDeferred(len(key), revLen+len(blk.Data))
			copy(op.Key, key)
			copy(op.Value, h.Rev)
			copy(op.Value[revLen:], blk.Data)
			op.Finish()
		}
	}
	for _, r := range c.Records {
		k := keyUIDString(tRecord, uid, r.Path)
		if r.CID.Defined() {
			b.Set(k, nil, nil) // the CID is the MST's to say
		} else {
			b.Delete(k, nil)
		}
	}
	for _, rc := range c.RefCounts {
		k := keyUIDCID(tRefCount, uid, rc.CID)
		if rc.Count > 1 { // one path is implied by the block being live
			b.Set(k, binary.AppendUvarint(nil, rc.Count), nil)
		} else {
			b.Delete(k, nil)
		}
	}
	// The collection index (tables 0b and 11) is the committer's to write:
	// see collTracker.
	for _, cc := range c.Collections {
		k := keyUIDString(tCollCount, uid, cc.Collection)
		if cc.Count > 0 {
			b.Set(k, binary.AppendUvarint(nil, cc.Count), nil)
		} else {
			b.Delete(k, nil)
		}
	}
	for i := range c.Blobs {
		m := &c.Blobs[i]
		k := keyUIDCID(tBlob, uid, m.CID)
		if m.Delete {
			b.Delete(k, nil)
		} else {
			b.Set(k, encodeBlobMeta(m), nil)
		}
	}
	for _, s := range c.PurgeEvents {
		b.Delete(eventKey(s), nil)
		b.Delete(eventByUIDKey(uid, s), nil)
	}
	var seqs []int64
	var evs []CommittedEvent
	for _, enc := range c.Events {
		seq++
		v := make([]byte, 16, 512)
		binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
		binary.BigEndian.PutUint64(v[8:], uid)
		v = enc(v, seq)
		b.Set(eventKey(seq), v, nil)
		b.Set(eventByUIDKey(uid, seq), nil, nil)
		seqs = append(seqs, seq)
		evs = append(evs, CommittedEvent{Seq: seq, UID: uid, Time: now, Frame: v[16:]})
	}
	return seqs, evs
}
