package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
)

// fakeFirehose is a subscribeRepos server driven by a script: the n-th
// connection (from 0) gets script(n, cursor, conn). It records the cursor
// each connection asked for ("" when none).
type fakeFirehose struct {
	t       *testing.T
	url     string
	mu      sync.Mutex
	cursors []string
	script  func(n int, cursor string, conn *websocket.Conn)
	refuse  func(n int, w http.ResponseWriter) bool // answer without upgrading
}

func newFakeFirehose(t *testing.T, script func(n int, cursor string, conn *websocket.Conn)) *fakeFirehose {
	f := &fakeFirehose{t: t, script: script}
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/xrpc/com.atproto.sync.subscribeRepos" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		n := len(f.cursors)
		f.cursors = append(f.cursors, r.URL.Query().Get("cursor"))
		f.mu.Unlock()
		if f.refuse != nil && f.refuse(n, w) {
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		f.script(n, r.URL.Query().Get("cursor"), conn)
	}))
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

func (f *fakeFirehose) seenCursors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cursors)
}

func send(conn *websocket.Conn, frames ...[]byte) {
	for _, fr := range frames {
		if err := conn.WriteMessage(websocket.BinaryMessage, fr); err != nil {
			return
		}
	}
}

// waitClosed reads until the client goes away.
func waitClosed(conn *websocket.Conn) {
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

func fastSubscriber(url string) *Subscriber {
	return &Subscriber{URL: url, ReconnectMin: time.Millisecond, ReconnectMax: 5 * time.Millisecond}
}

var errEnough = errors.New("enough")

// TestSubscriberResumes drives three connections: one dropped without a
// close frame, one that repeats events the client had and ends with
// ConsumerTooSlow, one that finishes. The handler must see each seq once,
// in order, and each reconnection must ask for the last delivered seq.
func TestSubscriberResumes(t *testing.T) {
	r := newLocalRepo(t, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	frames := map[int64][]byte{}
	texts := map[int64]string{}
	for seq := int64(1); seq <= 10; seq++ {
		text := "post " + strconv.FormatInt(seq, 10)
		res := r.commit(create("app.bsky.feed.post/3l0000000000"+strconv.FormatInt(seq-1, 10), record(t, text)))
		frames[seq], texts[seq] = r.commitFrame(res, seq), text
	}
	fh := newFakeFirehose(t, func(n int, cursor string, conn *websocket.Conn) {
		switch n {
		case 0:
			send(conn, frames[1], frames[2], frames[3], frames[4])
			time.Sleep(20 * time.Millisecond)
			conn.UnderlyingConn().Close() // no close frame
		case 1:
			send(conn, frames[3], frames[4], frames[5], wire.InfoFrame("OutdatedCursor", "old"),
				cborFrame(t, map[string]any{"t": "#tombstone", "op": int64(1)}, map[string]any{"seq": int64(6), "did": "did:plc:x", "time": testTimeString}),
				frames[6], frames[7], wire.ErrorFrame("ConsumerTooSlow", "too slow"))
			waitClosed(conn)
		default:
			send(conn, frames[8], frames[9], frames[10])
			waitClosed(conn)
		}
	})
	s := fastSubscriber(fh.url)
	zero := int64(0)
	s.Cursor = &zero
	s.Keys = StaticKey(r.publicKey())
	var seqs []int64
	var infos, errFrames []string
	err := s.Run(context.Background(), func(_ context.Context, ev Event) error {
		switch e := ev.(type) {
		case *Commit:
			seqs = append(seqs, e.Seq)
			if !e.Verified || e.VerifyErr != nil {
				t.Errorf("seq %d not verified: %v", e.Seq, e.VerifyErr)
			}
			if v, err := e.Ops[0].Value(); err != nil || v["text"] != texts[e.Seq] {
				t.Errorf("seq %d record %v %v, want text %q", e.Seq, v, err, texts[e.Seq])
			}
			if e.Seq == 10 {
				return errEnough
			}
		case *Info:
			infos = append(infos, e.Name)
		case *ErrorFrame:
			errFrames = append(errFrames, e.Name)
		default:
			t.Errorf("unexpected event %T", ev)
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("Run: %v", err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(seqs, want) {
		t.Errorf("delivered %v, want %v", seqs, want)
	}
	if want := []string{"0", "4", "7"}; !slices.Equal(fh.seenCursors(), want) {
		t.Errorf("cursors asked %q, want %q", fh.seenCursors(), want)
	}
	if !slices.Equal(infos, []string{"OutdatedCursor"}) || !slices.Equal(errFrames, []string{"ConsumerTooSlow"}) {
		t.Errorf("infos %v, error frames %v", infos, errFrames)
	}
	st := s.Stats()
	if st.Connects != 3 || st.Duplicates != 2 || st.Unknown != 1 || st.Commits != 9 || st.Events != 9 || st.ErrorFrames != 1 || st.VerifyFailures != 0 || st.TrackedRepos != 1 {
		t.Errorf("stats %+v", st) // seq 10 was refused by the handler: not delivered
	}
	if last, ok := s.LastSeq(); !ok || last != 9 {
		t.Errorf("LastSeq %d %v, want 9", last, ok)
	}
}

func TestSubscriberStops(t *testing.T) {
	t.Run("FutureCursor", func(t *testing.T) {
		fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) {
			send(conn, wire.ErrorFrame("FutureCursor", "Cursor in the future."))
			waitClosed(conn)
		})
		s := fastSubscriber(fh.url)
		c := int64(99)
		s.Cursor = &c
		var seen []string
		err := s.Run(context.Background(), func(_ context.Context, ev Event) error {
			seen = append(seen, ev.(*ErrorFrame).Name)
			return nil
		})
		var ef *ErrorFrame
		if !errors.Is(err, ErrFutureCursor) || !errors.As(err, &ef) || ef.Message != "Cursor in the future." || !slices.Equal(seen, []string{"FutureCursor"}) {
			t.Fatalf("Run: %v (handler saw %v)", err, seen)
		}
		if got := fh.seenCursors(); !slices.Equal(got, []string{"99"}) {
			t.Errorf("connections %q", got)
		}
	})
	t.Run("InvalidRequest frame", func(t *testing.T) {
		fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) {
			send(conn, wire.ErrorFrame("InvalidRequest", "cursor: bad"))
			waitClosed(conn)
		})
		err := fastSubscriber(fh.url).Run(context.Background(), func(context.Context, Event) error { return nil })
		if !errors.Is(err, ErrInvalidRequest) || len(fh.seenCursors()) != 1 {
			t.Fatalf("Run: %v after %d connections", err, len(fh.seenCursors()))
		}
	})
	t.Run("only error frames: backoff grows, then gives up", func(t *testing.T) {
		fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) {
			send(conn, wire.ErrorFrame("ConsumerTooSlow", ""))
			waitClosed(conn)
		})
		s := fastSubscriber(fh.url)
		s.MaxFailures = 3
		err := s.Run(context.Background(), func(context.Context, Event) error { return nil })
		if !errors.Is(err, ErrConsumerTooSlow) || len(fh.seenCursors()) != 3 || s.Stats().ErrorFrames != 3 {
			t.Fatalf("Run: %v after %d connections", err, len(fh.seenCursors()))
		}
	})
	t.Run("malformed frame", func(t *testing.T) {
		fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) {
			send(conn, []byte{0xa1, 0x62, 'o', 'p', 0x01}) // a header, no body
			waitClosed(conn)
		})
		err := fastSubscriber(fh.url).Run(context.Background(), func(context.Context, Event) error { return nil })
		if !errors.Is(err, ErrMalformedFrame) || len(fh.seenCursors()) != 1 {
			t.Fatalf("Run: %v after %d connections", err, len(fh.seenCursors()))
		}
	})
	t.Run("handshake refused", func(t *testing.T) {
		fh := newFakeFirehose(t, nil)
		fh.refuse = func(n int, w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"InvalidRequest","message":"cursor: not an integer"}`))
			return true
		}
		err := fastSubscriber(fh.url).Run(context.Background(), func(context.Context, Event) error { return nil })
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 400 || !errors.Is(err, ErrInvalidRequest) || ae.Message != "cursor: not an integer" || len(fh.seenCursors()) != 1 {
			t.Fatalf("Run: %v after %d connections", err, len(fh.seenCursors()))
		}
	})
	t.Run("unavailable, then gives up", func(t *testing.T) {
		fh := newFakeFirehose(t, nil)
		fh.refuse = func(n int, w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		s := fastSubscriber(fh.url)
		s.MaxFailures = 3
		err := s.Run(context.Background(), func(context.Context, Event) error { return nil })
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 503 || len(fh.seenCursors()) != 3 {
			t.Fatalf("Run: %v after %d connections, want 503 after 3", err, len(fh.seenCursors()))
		}
	})
	t.Run("cancel", func(t *testing.T) {
		fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) { waitClosed(conn) })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err := fastSubscriber(fh.url).Run(ctx, func(context.Context, Event) error { return nil })
		if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
			t.Fatalf("Run: %v after %v", err, time.Since(start))
		}
	})
}

// purgingKeys is a KeySource with a cache to purge, whose keys are given
// per DID; refresh gives fresh[did] when set.
type purgingKeys struct {
	mu        sync.Mutex
	keys      map[syntax.DID]atcrypto.PublicKey
	fresh     map[syntax.DID]atcrypto.PublicKey
	refreshes int
	purged    []syntax.DID
}

func (k *purgingKeys) SigningKey(_ context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[did], nil
}

func (k *purgingKeys) RefreshSigningKey(_ context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshes++
	if f, ok := k.fresh[did]; ok {
		return f, nil
	}
	return k.keys[did], nil
}

func (k *purgingKeys) Purge(did syntax.DID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.purged = append(k.purged, did)
}

func TestSubscriberVerification(t *testing.T) {
	alice := newLocalRepo(t, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	bob := newLocalRepo(t, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
	carol := newLocalRepo(t, "did:plc:cccccccccccccccccccccccc")
	stranger := newLocalRepo(t, "did:plc:ssssssssssssssssssssssss")
	a1 := alice.commit(create("app.bsky.feed.post/3l00000000001", record(t, "a1")))
	a2 := alice.commit(create("app.bsky.feed.post/3l00000000002", record(t, "a2")))
	alice.commit(create("app.bsky.feed.post/3l00000000003", record(t, "a3"))) // never sent: a gap
	a4 := alice.commit(create("app.bsky.feed.post/3l00000000004", record(t, "a4")))
	a5 := alice.commit(create("app.bsky.feed.post/3l00000000005", record(t, "a5")))
	b1 := bob.commit(create("app.bsky.feed.post/3l00000000001", record(t, "b1")))
	c1 := carol.commit(create("app.bsky.feed.post/3l00000000001", record(t, "c1")))

	frames := [][]byte{
		alice.commitFrame(a1, 1),
		alice.commitFrame(a2, 2),
		alice.commitFrame(a4, 3), // since and prevData do not follow a2: chain break
		alice.commitFrame(a5, 4), // continues from a4: fine again
		bob.commitFrame(b1, 5),   // bob's key is wrong, and still wrong after a refresh
		carol.commitFrame(c1, 6), // carol's cached key is stale; the refreshed one is right
		(&wire.Identity{DID: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", Time: testTime}).AppendFrame(nil, 7),
		alice.syncFrame(8),
	}
	fh := newFakeFirehose(t, func(n int, _ string, conn *websocket.Conn) {
		send(conn, frames...)
		waitClosed(conn)
	})
	keys := &purgingKeys{
		keys: map[syntax.DID]atcrypto.PublicKey{
			alice.did: alice.publicKey(), bob.did: stranger.publicKey(), carol.did: stranger.publicKey(),
		},
		fresh: map[syntax.DID]atcrypto.PublicKey{carol.did: carol.publicKey()},
	}
	s := fastSubscriber(fh.url)
	s.Keys = keys
	results := map[int64]error{}
	err := s.Run(context.Background(), func(_ context.Context, ev Event) error {
		switch e := ev.(type) {
		case *Commit:
			if e.Verified == (e.VerifyErr != nil) {
				t.Errorf("seq %d: Verified %v with VerifyErr %v", e.Seq, e.Verified, e.VerifyErr)
			}
			results[e.Seq] = e.VerifyErr
		case *Sync:
			if !e.Verified || e.CommitCID != alice.headCID || e.Data != alice.head.Data {
				t.Errorf("#sync: %+v", e)
			}
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	want := map[int64]error{1: nil, 2: nil, 3: repo.ErrChainBreak, 4: nil, 5: repo.ErrSignature, 6: nil}
	for seq, w := range want {
		if got := results[seq]; (w == nil) != (got == nil) || (w != nil && !errors.Is(repo.FailedCheck(got), w)) {
			t.Errorf("seq %d: %v, want %v", seq, got, w)
		}
	}
	if keys.refreshes != 2 || !slices.Equal(keys.purged, []syntax.DID{alice.did}) {
		t.Errorf("%d refreshes (want 2: bob, carol), purged %v", keys.refreshes, keys.purged)
	}
	if st := s.Stats(); st.VerifyFailures != 2 || st.TrackedRepos != 2 {
		t.Errorf("stats %+v", st)
	}
}
