package store

import (
	"bytes"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
)

// accountCache keeps the accounts read or written lately — the record, the
// head, the bytes of the head's commit block and the record counts of the
// collections written lately — so that a writer's reads
// before a change (the relay reads the account, its head and its previous
// commit for every upstream commit) cost no Pebble lookups. Measured on the
// relay ingest benchmark, those lookups were about a fifth of the CPU once
// the block cache could not hold the index and data blocks of 10k accounts.
//
// The committer is the only source of new values: after each durable group
// it updates the entries its changes touched (writeChange is the only writer
// of account records and heads). A reader that misses reads Pebble and
// inserts what it read only if no group was committed in the meantime (gen
// unchanged), so a read that raced a commit never overwrites a newer value.
// Entries are bounded (Options.AccountCache); beyond that, an arbitrary
// sixteenth of them is dropped.
type accountCache struct {
	mu    sync.Mutex
	gen   uint64
	max   int
	byDID map[string]*cachedAccount
	byUID map[uint64]*cachedAccount
}

type cachedAccount struct {
	acct   Account
	commit []byte      // the head commit's block; nil when not known
	colls  []collCount // record counts of some collections (table 0a)
}

// collCount is a collection's record count as stored (0: none).
type collCount struct {
	name string
	n    uint64
}

// maxCachedColls bounds the collection counts kept per account (an
// app.bsky account writes to about six collections).
const maxCachedColls = 16

func (e *cachedAccount) collection(name string) (uint64, bool) {
	for _, c := range e.colls {
		if c.name == name {
			return c.n, true
		}
	}
	return 0, false
}

func (e *cachedAccount) setCollection(name string, n uint64) {
	for i := range e.colls {
		if e.colls[i].name == name {
			e.colls[i].n = n
			return
		}
	}
	if len(e.colls) < maxCachedColls {
		// A copy: the name may point into a frame the writer decoded.
		e.colls = append(e.colls, collCount{strings.Clone(name), n})
	}
}

func newAccountCache(max int) *accountCache {
	return &accountCache{max: max, byDID: map[string]*cachedAccount{}, byUID: map[uint64]*cachedAccount{}}
}

// get returns a copy of the cached account, and the generation to pass to
// put after a miss.
func (c *accountCache) get(did string) (Account, uint64, bool) {
	if c == nil {
		return Account{}, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byDID[did]; ok {
		return e.acct, c.gen, true
	}
	return Account{}, c.gen, false
}

// commitBlock returns the bytes and rev of the commit block c of account
// uid when it is its cached head.
func (c *accountCache) commitBlock(uid uint64, cc cid.Cid) ([]byte, string, bool) {
	if c == nil {
		return nil, "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byUID[uid]; ok && e.commit != nil && e.acct.Head.Commit == cc {
		return e.commit, e.acct.Head.Rev, true
	}
	return nil, "", false
}

// collection returns the cached record count of uid's collection, and the
// generation to pass to putCollection after a miss.
func (c *accountCache) collection(uid uint64, name string) (uint64, uint64, bool) {
	if c == nil {
		return 0, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byUID[uid]; ok {
		if n, ok := e.collection(name); ok {
			return n, c.gen, true
		}
	}
	return 0, c.gen, false
}

// putCollection records a collection count read from Pebble at generation
// gen, when the account is cached.
func (c *accountCache) putCollection(gen, uid uint64, name string, n uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if e, ok := c.byUID[uid]; ok {
		e.setCollection(name, n)
	}
}

// put inserts an account read from Pebble at generation gen.
func (c *accountCache) put(gen uint64, a *Account) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.byDID[a.DID]; ok {
		return
	}
	c.insertLocked(&cachedAccount{acct: *a})
}

func (c *accountCache) insertLocked(e *cachedAccount) {
	if len(c.byDID) >= c.max {
		drop := max(1, c.max/16)
		for did, old := range c.byDID {
			delete(c.byDID, did)
			delete(c.byUID, old.acct.UID)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.byDID[e.acct.DID] = e
	c.byUID[e.acct.UID] = e
}

// committed updates the entries of a durable group's changes: those that
// were applied (ok[i]), created[i] when the change created its account.
func (c *accountCache) committed(changes []*Change, ok, created []bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for i, ch := range changes {
		if ch == nil || !ok[i] {
			continue
		}
		e := c.byUID[ch.UID]
		switch {
		case ch.Account != nil && e != nil:
			head := e.acct.Head
			e.acct = *ch.Account
			e.acct.Head = head
		case ch.Account != nil && created[i]:
			// A new account: its head is the change's, or none.
			e = &cachedAccount{acct: *ch.Account}
			e.acct.Head = Head{}
			c.insertLocked(e)
		case ch.Account != nil:
			continue // its head is not known here: read it on the next miss
		}
		if e == nil {
			continue
		}
		if ch.Delete || ch.ResetRecords {
			e.colls = nil
		}
		for _, cc := range ch.Collections {
			e.setCollection(cc.Collection, cc.Count)
		}
		switch {
		case ch.Delete:
			e.acct.Head, e.commit = Head{}, nil
		case ch.DropContent:
			e.commit = nil // the head commit block is gone with the blocks
		case ch.Head != nil:
			e.acct.Head, e.commit = *ch.Head, nil
			for _, b := range ch.NewBlocks {
				if b.CID == ch.Head.Commit {
					e.commit = bytes.Clone(b.Data) // the writer's buffers are its own
					break
				}
			}
		}
	}
}
