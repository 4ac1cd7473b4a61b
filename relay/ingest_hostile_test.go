package relay_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// decodeCommitFrame decodes a #commit frame of a log.
func decodeCommitFrame(t *testing.T, f frame) *wire.CommitEvent {
	t.Helper()
	ev, err := wire.DecodeFrame(f.bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := ev.(*wire.CommitEvent)
	if !ok {
		t.Fatalf("frame %d is a %T", f.seq, ev)
	}
	return c
}

// encodeCommit writes ev back as a frame with seq (rebase and tooBig false).
func encodeCommit(t *testing.T, ev *wire.CommitEvent, seq int64) []byte {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err != nil {
		t.Fatal(err)
	}
	return (&wire.Commit{Repo: ev.Repo, Rev: ev.Rev, Since: ev.Since, Commit: ev.Commit, PrevData: ev.PrevData, Blocks: ev.Blocks, Ops: ev.Ops, Time: at}).AppendFrame(nil, seq)
}

// resign replaces the commit block of ev's slice by the commit sign makes
// (from the decoded original), fixing the CAR root, ev.Commit and ev.Rev.
func resign(t *testing.T, ev *wire.CommitEvent, sign func(c *repo.Commit)) {
	t.Helper()
	_, blocks, err := car.ParseBytes(ev.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(blocks[ev.Commit])
	if err != nil {
		t.Fatal(err)
	}
	delete(blocks, ev.Commit)
	sign(c)
	data := c.Bytes()
	ev.Commit, ev.Rev = dagcbor.SumCBOR(data), string(c.Rev)
	ev.Blocks = car.AppendBlock(car.AppendHeader(nil, ev.Commit), ev.Commit, data)
	for bc, b := range blocks {
		ev.Blocks = car.AppendBlock(ev.Blocks, bc, b)
	}
}

// withoutBlock returns ev's slice without the block c.
func withoutBlock(t *testing.T, ev *wire.CommitEvent, drop cid.Cid) []byte {
	t.Helper()
	roots, blocks, err := car.ParseBytes(ev.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := blocks[drop]; !ok {
		t.Fatalf("block %s is not in the slice", drop)
	}
	out := car.AppendHeader(nil, roots[0])
	for bc, b := range blocks {
		if bc != drop {
			out = car.AppendBlock(out, bc, b)
		}
	}
	return out
}

// Each kind of bad commit from a hostile upstream: the event is not
// forwarded, the account is marked desynchronized (an #account says so),
// the failed check is counted, and a resync brings the account to the
// upstream's true state (getRepo), announced by our #sync.
func TestIngestHostileCommits(t *testing.T) {
	otherKey, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	type env struct {
		key  atcrypto.PrivateKey
		head store.Head // the mirror's head before the bad commit
	}
	cases := []struct {
		name  string
		check string // relay_ingest_verify_failures_total label
		// tamper changes ev, or returns the bad frame itself (nil: encode ev)
		tamper func(t *testing.T, e env, ev *wire.CommitEvent) []byte
	}{
		{"bad signature", "signature", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			resign(t, ev, func(c *repo.Commit) {
				_ = c.Sign(e.key)
				c.Sig[10] ^= 1
			})
			return nil
		}},
		{"signed by another key", "signature", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			resign(t, ev, func(c *repo.Commit) { _ = c.Sign(otherKey) })
			return nil
		}},
		{"rev not increasing", "rev_order", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			resign(t, ev, func(c *repo.Commit) {
				c.Rev = syntax.TID(e.head.Rev)
				_ = c.Sign(e.key)
			})
			return nil
		}},
		{"rev in the future", "future_rev", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			resign(t, ev, func(c *repo.Commit) {
				c.Rev = syntax.NewTIDFromTime(time.Now().Add(time.Hour), 0)
				_ = c.Sign(e.key)
			})
			return nil
		}},
		{"commit is not the CAR root", "cid_mismatch", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			ev.Commit = dagcbor.SumCBOR([]byte{0xa0})
			return nil
		}},
		{"tampered op", "inversion", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			for i := range ev.Ops {
				if ev.Ops[i].Action == repo.ActionCreate {
					ev.Ops[i].CID = dagcbor.SumCBOR(record("not this one"))
					return nil
				}
			}
			t.Fatal("no create op")
			return nil
		}},
		{"prevData mismatch", "prevdata_mismatch", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			ev.PrevData = dagcbor.SumCBOR([]byte{0x80})
			return nil
		}},
		{"prevData missing", "prevdata_missing", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			ev.PrevData = cid.Undef
			return nil
		}},
		{"since is not the stored rev", "chain_break", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			ev.Since = syntax.NewTIDFromTime(time.Now().Add(-time.Hour), 0).String()
			return nil
		}},
		{"missing block", "missing_block", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			_, blocks, _ := car.ParseBytes(ev.Blocks, nil)
			c, _ := repo.DecodeCommit(blocks[ev.Commit])
			ev.Blocks = withoutBlock(t, ev, c.Data) // the new MST root
			return nil
		}},
		{"too many ops", "too_many_ops", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			for len(ev.Ops) <= repo.MaxCommitOps {
				ev.Ops = append(ev.Ops, ev.Ops[0])
			}
			return nil
		}},
		{"blocks too large", "too_large", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			ev.Blocks = append(ev.Blocks, make([]byte, repo.MaxCommitBlocksBytes)...)
			return nil
		}},
		{"tooBig set", "malformed", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			b := encodeCommit(t, ev, 1)
			key := append(dagcbor.AppendText(nil, "tooBig"), 0xf4)
			i := bytes.Index(b, key)
			if i < 0 {
				t.Fatal("no tooBig in the frame")
			}
			b[i+len(key)-1] = 0xf5
			return b
		}},
		{"time is not a datetime", "malformed", func(t *testing.T, e env, ev *wire.CommitEvent) []byte {
			b := encodeCommit(t, ev, 1)
			return bytes.Replace(b, dagcbor.AppendText(nil, ev.Time), dagcbor.AppendText(nil, "yesterday at noon......"), 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ident := newFakeIdentity()
			up := newUpstream(t)
			did := up.createAccount(ident, "target.test")
			up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"))
			up.write(did, create("app.bsky.feed.post/c", "c"), update("app.bsky.feed.post/a", "a2"))
			m := newMirror(t, ident)
			m.submit(up.hostname, frames(t, up.db, 0)...)
			m.settle()
			sameRepo(t, up.db, m.db, did)

			e := env{key: up.keys[did], head: head(t, m.db, did)}
			upMark, ourMark := up.db.LastSeq(), m.db.LastSeq()
			up.write(did, create("app.bsky.feed.post/d", "d"), del("app.bsky.feed.post/b"), update("app.bsky.feed.post/c", "c2"))
			real := frames(t, up.db, upMark)[0]
			ev := decodeCommitFrame(t, real)
			bad := tc.tamper(t, e, ev)
			if bad == nil {
				bad = encodeCommit(t, ev, real.seq)
			}
			m.submit(up.hostname, frame{real.seq, bad})
			m.settle()
			caughtUp(t, "the resync", m.db, up, did)
			sameRepo(t, up.db, m.db, did)
			if n := m.counter("relay_ingest_verify_failures_total", map[string]string{"check": tc.check}); n != 1 {
				t.Fatalf("failures of check %s counted %v", tc.check, n)
			}
			var types []string
			for _, d := range decodeLog(t, m.db, ourMark) {
				types = append(types, d.ev.Type())
				switch ev := d.ev.(type) {
				case *wire.CommitEvent:
					t.Fatalf("a #commit was forwarded: rev %s", ev.Rev)
				case *wire.SyncEvent:
					c, cc, err := repo.VerifySyncMessage(ev.Message(), pubKeys(up)[did])
					if err != nil || cc != head(t, up.db, did).Commit || string(c.Rev) != ev.Rev {
						t.Fatalf("our #sync: %v", err)
					}
				}
			}
			// desynchronized, then active again, then the state to fetch
			want := []string{wire.TypeAccount, wire.TypeAccount, wire.TypeSync}
			if len(types) != len(want) || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
				t.Fatalf("our log after the bad commit: %v", types)
			}
			log := decodeLog(t, m.db, ourMark)
			if a := log[0].ev.(*wire.AccountEvent); !a.Active || a.Status != "desynchronized" {
				t.Fatalf("first #account %+v", a)
			}
			if a := log[1].ev.(*wire.AccountEvent); !a.Active || a.Status != "" {
				t.Fatalf("second #account %+v", a)
			}
			// Later commits chain from the resynced state.
			mark := up.db.LastSeq()
			up.write(did, create("app.bsky.feed.post/e", "e"))
			m.submit(up.hostname, frames(t, up.db, mark)...)
			m.settle()
			sameRepo(t, up.db, m.db, did)
		})
	}
}

// Events from a host that is not the account's PDS are dropped without
// touching the account: a host cannot desynchronize accounts it does not
// serve. An account on a PDS nobody subscribed to is never created from
// another host's events; a DID that does not resolve neither.
func TestIngestWrongHost(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "victim.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()

	mark, ourMark := up.db.LastSeq(), m.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/b", "b"))
	next := frames(t, up.db, mark)
	m.submit("evil.example", next...)
	m.settle()
	if a, _ := m.db.Account(did); a.Status != store.StatusActive || a.Host != up.hostname {
		t.Fatalf("account after an event from another host: %+v", a)
	}
	if log := frames(t, m.db, ourMark); len(log) != 0 {
		t.Fatalf("%d frames forwarded", len(log))
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "wrong_host"}); n != 1 {
		t.Fatalf("wrong host counted %v", n)
	}
	m.submit(up.hostname, next...) // the real one still applies
	m.settle()
	sameRepo(t, up.db, m.db, did)

	// An account whose document names another PDS, and one that does not
	// resolve at all.
	elsewhere := up.createAccount(ident, "elsewhere.test")
	ident.update(elsewhere, func(id *identity.Identity) { id.PDSEndpoint = "https://pds.elsewhere.example" })
	ghost := up.createAccount(ident, "ghost.test")
	ident.mu.Lock()
	delete(ident.ids, syntax.DID(ghost))
	ident.mu.Unlock()
	mark = up.db.LastSeq()
	up.write(elsewhere, create("app.bsky.feed.post/x", "x"))
	up.write(ghost, create("app.bsky.feed.post/x", "x"))
	ourMark = m.db.LastSeq()
	m.submit(up.hostname, frames(t, up.db, mark-4)...) // their #identity, #account and #commit
	m.settle()
	for _, d := range []string{elsewhere, ghost} {
		if _, err := m.db.Account(d); err == nil {
			t.Fatalf("%s was created", d)
		}
	}
	if log := frames(t, m.db, ourMark); len(log) != 0 {
		t.Fatalf("%d frames forwarded", len(log))
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "identity_error"}); n != 3 {
		t.Fatalf("identity errors counted %v", n)
	}
}

// A signature that fails with the cached key is checked once more with the
// key of a fresh document (a key rotation the cache has not seen yet).
func TestIngestRefreshesTheKey(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "rotated.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident)
	fs := frames(t, up.db, 0)
	m.submit(up.hostname, fs[:2]...) // #identity (which purges the cache) and #account
	m.settle()
	old, _ := atcrypto.GeneratePrivateKeyK256()
	oldPub, _ := old.PublicKey()
	ident.mu.Lock()
	ident.stale[syntax.DID(did)] = oldPub
	ident.mu.Unlock()
	m.submit(up.hostname, fs[2:]...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
	if n := ident.count(ident.refreshes, did); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "invalid"}); n != 0 {
		t.Fatalf("%v invalid events", n)
	}
}

// --lenient accepts a commit without prevData (a pre-sync-1.1 host) when
// its ops apply to the stored tree and give the signed root.
func TestIngestLenient(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "legacy.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	up.write(did, create("app.bsky.feed.post/b", "b"), update("app.bsky.feed.post/a", "a2"))
	var fs []frame
	for _, f := range frames(t, up.db, 0) {
		if ev, _ := wire.DecodeFrame(f.bytes); ev.Type() == wire.TypeCommit {
			c := ev.(*wire.CommitEvent)
			c.PrevData = cid.Undef
			f.bytes = encodeCommit(t, c, f.seq)
		}
		fs = append(fs, f)
	}
	m := newMirror(t, ident, func(o *relay.IngestOptions) { o.Lenient = true })
	m.submit(up.hostname, fs...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
	if n := m.counter("relay_ingest_events_total", map[string]string{"type": "commit", "outcome": "applied"}); n != 2 {
		t.Fatalf("applied %v lenient commits", n)
	}
}

// A replayed commit (an upstream resending from an older cursor) is dropped
// quietly: no desynchronization, nothing forwarded.
func TestIngestReplayIsStale(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "replay.test")
	for i := range 4 {
		up.write(did, create("app.bsky.feed.post/"+string(rune('a'+i)), "x"))
	}
	fs := frames(t, up.db, 0)
	m := newMirror(t, ident)
	m.submit(up.hostname, fs...)
	m.settle()
	ourMark := m.db.LastSeq()
	m.submit(up.hostname, fs[2:]...)
	m.settle()
	if log := decodeLog(t, m.db, ourMark); len(log) != 0 {
		t.Fatalf("replay forwarded %d frames", len(log))
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "stale"}); n != 4 {
		t.Fatalf("stale commits counted %v", n)
	}
	if a, _ := m.db.Account(did); a.Status != store.StatusActive {
		t.Fatalf("status %q", a.Status)
	}
	sameRepo(t, up.db, m.db, did)
}
