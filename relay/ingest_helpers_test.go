package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// A fake PDS for the ingest tests: a real host (adopted identities, so no
// directory is needed) with the whole XRPC API on httptest, whose event log
// gives the frames a relay would read from its firehose, and whose getRepo
// a resync fetches.
type upstream struct {
	t        testing.TB
	db       *store.DB
	repos    *repostore.Repos
	host     *host.Host
	url      string // http://127.0.0.1:port
	hostname string // 127.0.0.1:port
	keys     map[string]atcrypto.PrivateKeyExportable

	gateMu   sync.Mutex
	getRepo  chan struct{} // when set, getRepo waits for it to close
	getRepos atomic.Int64  // getRepo requests served
	firehose http.Handler  // when set, serves subscribeRepos (a scripted firehose)
}

// serveFirehose makes the upstream serve subscribeRepos with h.
func (u *upstream) serveFirehose(h http.Handler) {
	u.gateMu.Lock()
	defer u.gateMu.Unlock()
	u.firehose = h
}

// holdGetRepo makes getRepo wait until the returned function is called.
func (u *upstream) holdGetRepo() (release func()) {
	u.gateMu.Lock()
	defer u.gateMu.Unlock()
	g := make(chan struct{})
	u.getRepo = g
	return func() {
		u.gateMu.Lock()
		u.getRepo = nil
		u.gateMu.Unlock()
		close(g)
	}
}

func newUpstream(t testing.TB) *upstream { return newUpstreamWith(t, nil) }

// newUpstreamWith is an upstream whose new accounts register their DIDs
// with dids (nil: accounts can only adopt identities).
func newUpstreamWith(t testing.TB, dids host.DIDCreator) *upstream {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	repos := &repostore.Repos{DB: db}
	ts := httptest.NewUnstartedServer(nil)
	u := &upstream{t: t, db: db, repos: repos, url: "http://" + ts.Listener.Addr().String(), hostname: ts.Listener.Addr().String(), keys: map[string]atcrypto.PrivateKeyExportable{}}
	u.host = host.New(host.Options{DB: db, Repos: repos, PublicURL: u.url, DIDs: dids})
	srv := xrpc.NewServer(xrpc.Options{Version: "ingest-test", Health: db.Healthy})
	api.New(api.Options{DB: db, Repos: repos, Host: u.host, Auth: &xrpc.Auth{AdminPassword: "x", Tokens: u.host}, PublicURL: u.url}).Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.gateMu.Lock()
		g, fh := u.getRepo, u.firehose
		u.gateMu.Unlock()
		if r.URL.Path == "/xrpc/com.atproto.sync.getRepo" {
			u.getRepos.Add(1)
			if g != nil {
				<-g
			}
		}
		if fh != nil && r.URL.Path == "/xrpc/com.atproto.sync.subscribeRepos" {
			fh.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		db.Close()
	})
	return u
}

var didCounter struct {
	sync.Mutex
	n int
}

// newDID returns a fresh did:plc (valid syntax; only the fake resolver
// knows it).
func newDID() string {
	didCounter.Lock()
	defer didCounter.Unlock()
	didCounter.n++
	s := fmt.Sprintf("%024d", didCounter.n)
	return "did:plc:" + strings.Map(func(r rune) rune { return 'a' + (r - '0') }, s)
}

// createAccount adopts a new identity on the upstream and registers it with
// the resolver (its PDS: this upstream).
func (u *upstream) createAccount(ident *fakeIdentity, handle string) string {
	u.t.Helper()
	did := newDID()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.host.CreateAccount(context.Background(), host.CreateAccountInput{Handle: handle, DID: did, SigningKey: key.Multibase()}); err != nil {
		u.t.Fatal(err)
	}
	u.keys[did] = key
	pub, _ := key.PublicKey()
	ident.set(did, pub, u.url, handle)
	return did
}

// record is a post record with text.
func record(text string) []byte {
	b, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-25T12:00:00.000Z"})
	if err != nil {
		panic(err)
	}
	return b
}

// write applies writes to an upstream repository.
func (u *upstream) write(did string, writes ...repo.Write) {
	u.t.Helper()
	ws := make([]host.Write, len(writes))
	for i, w := range writes {
		ws[i] = host.Write{Write: w}
	}
	if _, err := u.host.ApplyWrites(context.Background(), did, ws, cid.Undef); err != nil {
		u.t.Fatal(err)
	}
}

func create(path, text string) repo.Write {
	return repo.Write{Action: repo.ActionCreate, Path: path, Record: record(text)}
}

func update(path, text string) repo.Write {
	return repo.Write{Action: repo.ActionUpdate, Path: path, Record: record(text)}
}

func del(path string) repo.Write { return repo.Write{Action: repo.ActionDelete, Path: path} }

// frame is one event of a log.
type frame struct {
	seq   int64
	bytes []byte
}

// frames returns the log's events after seq.
func frames(t *testing.T, db *store.DB, after int64) []frame {
	t.Helper()
	var out []frame
	if err := db.Events(after, func(e store.CommittedEvent) error {
		out = append(out, frame{e.Seq, bytes.Clone(e.Frame)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// head returns an account's head on a store.
func head(t *testing.T, db *store.DB, did string) store.Head {
	t.Helper()
	a, err := db.Account(did)
	if err != nil {
		t.Fatalf("%s: %v", did, err)
	}
	return a.Head
}

// repoCAR returns the root and blocks of an account's getRepo CAR.
func repoCAR(t *testing.T, db *store.DB, did string) (cid.Cid, map[cid.Cid][]byte) {
	t.Helper()
	a, err := db.Account(did)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&repostore.Repos{DB: db}).WriteRepo(&buf, a, ""); err != nil {
		t.Fatalf("%s: %v", did, err)
	}
	roots, blocks, err := car.ReadAll(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roots[0], blocks
}

// sameRepo fails unless the relay serves did exactly as the upstream does.
func sameRepo(t *testing.T, up, mirror *store.DB, did string) {
	t.Helper()
	r1, b1 := repoCAR(t, up, did)
	r2, b2 := repoCAR(t, mirror, did)
	if r1 != r2 || !maps.EqualFunc(b1, b2, bytes.Equal) {
		for c, b := range b1 {
			if _, ok := b2[c]; !ok {
				t.Logf("the mirror lacks %s: %x", c, b)
			}
		}
		for c, b := range b2 {
			if _, ok := b1[c]; !ok {
				t.Logf("the mirror has %s in excess: %x", c, b)
			}
		}
		t.Fatalf("%s: mirror differs: root %s vs %s, %d vs %d blocks", did, r1, r2, len(b1), len(b2))
	}
}

// fakeIdentity is an IdentityResolver over a map. SigningKey answers the
// cached key, which a test may make stale; RefreshSigningKey and a Purge
// bring the current one.
type fakeIdentity struct {
	mu        sync.Mutex
	ids       map[syntax.DID]*identity.Identity
	stale     map[syntax.DID]atcrypto.PublicKey // cached until refreshed
	refreshes map[syntax.DID]int
	purges    map[syntax.DID]int
	gate      chan struct{} // when set, lookups wait for it
}

var _ relay.IdentityResolver = (*fakeIdentity)(nil)

func newFakeIdentity() *fakeIdentity {
	return &fakeIdentity{
		ids: map[syntax.DID]*identity.Identity{}, stale: map[syntax.DID]atcrypto.PublicKey{},
		refreshes: map[syntax.DID]int{}, purges: map[syntax.DID]int{},
	}
}

func (f *fakeIdentity) set(did string, key atcrypto.PublicKey, pds, handle string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := &identity.Identity{DID: syntax.DID(did), Handle: syntax.HandleInvalid, SigningKey: key, PDSEndpoint: pds}
	if handle != "" {
		id.Handle = syntax.Handle(handle)
		id.DeclaredHandle = syntax.Handle(handle)
	}
	f.ids[syntax.DID(did)] = id
}

func (f *fakeIdentity) update(did string, fn func(*identity.Identity)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := *f.ids[syntax.DID(did)]
	fn(&id)
	f.ids[syntax.DID(did)] = &id
}

func (f *fakeIdentity) wait(ctx context.Context) error {
	f.mu.Lock()
	g := f.gate
	f.mu.Unlock()
	if g == nil {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeIdentity) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[did]
	if !ok {
		return nil, fmt.Errorf("fake identity: %s: %w", did, identity.ErrDIDNotFound)
	}
	return id, nil
}

func (f *fakeIdentity) SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	id, err := f.LookupDID(ctx, did)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.stale[did]; ok {
		return k, nil
	}
	return id.SigningKey, nil
}

func (f *fakeIdentity) RefreshSigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	f.mu.Lock()
	f.refreshes[did]++
	delete(f.stale, did)
	f.mu.Unlock()
	return f.SigningKey(ctx, did)
}

func (f *fakeIdentity) PDSEndpoint(ctx context.Context, did syntax.DID) (string, error) {
	id, err := f.LookupDID(ctx, did)
	if err != nil {
		return "", err
	}
	return id.PDSEndpoint, nil
}

func (f *fakeIdentity) Purge(did syntax.DID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges[did]++
	delete(f.stale, did)
}

func (f *fakeIdentity) count(m map[syntax.DID]int, did string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return m[syntax.DID(did)]
}

// mirror is a relay's store and ingest, with a record of every OnDone.
type mirror struct {
	t      *testing.T
	db     *store.DB
	ingest *relay.Ingest
	reg    *prometheus.Registry

	mu        sync.Mutex
	done      map[string]int // "host seq" → OnDone calls
	submitted int
	doneCount int
	changed   chan struct{}
}

type mirrorOptions func(*relay.IngestOptions)

func newMirror(t *testing.T, ident relay.IdentityResolver, opts ...mirrorOptions) *mirror {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{t: t, db: db, done: map[string]int{}, changed: make(chan struct{})}
	t.Cleanup(func() {
		m.ingest.Close()
		db.Close()
	})
	m.start(ident, opts...)
	return m
}

// start runs a new ingest on the mirror's store (with a registry of its
// own); restart closes the running one first, as a relay restarted with
// other options would.
func (m *mirror) start(ident relay.IdentityResolver, opts ...mirrorOptions) {
	m.t.Helper()
	m.reg = prometheus.NewRegistry()
	o := relay.IngestOptions{
		DB: m.db, Repos: &repostore.Repos{DB: m.db}, Identity: ident, Workers: 4,
		AllowInsecure: true, Registerer: m.reg, OnDone: m.onDone,
		ResyncBackoff: time.Millisecond, MaxResyncBackoff: 10 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	in, err := relay.NewIngest(o)
	if err != nil {
		m.t.Fatal(err)
	}
	m.ingest = in
}

func (m *mirror) restart(ident relay.IdentityResolver, opts ...mirrorOptions) {
	m.t.Helper()
	m.idle()
	m.ingest.Close()
	m.start(ident, opts...)
}

func (m *mirror) onDone(hostname string, seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done[fmt.Sprint(hostname, " ", seq)]++
	m.doneCount++
	close(m.changed)
	m.changed = make(chan struct{})
}

// submit hands frames to the ingest, as a subscription to u would.
func (m *mirror) submit(hostname string, fs ...frame) {
	m.t.Helper()
	for _, f := range fs {
		m.mu.Lock()
		m.submitted++
		m.mu.Unlock()
		if err := m.ingest.Submit(context.Background(), hostname, f.seq, f.bytes); err != nil {
			m.t.Fatal(err)
		}
	}
}

// settle waits until every submitted event is done.
func (m *mirror) settle() {
	m.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		m.mu.Lock()
		all, ch := m.doneCount >= m.submitted, m.changed
		m.mu.Unlock()
		if all {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			m.t.Fatalf("%d of %d events done", m.doneCount, m.submitted)
		}
	}
}

// idle waits until the ingest holds nothing: no event, no resync (the
// bookkeeping of an event follows its OnDone by a moment).
func (m *mirror) idle() {
	m.t.Helper()
	eventuallyTrue(m.t, "an idle ingest", func() bool { return m.ingest.Stats() == (relay.QueueStats{}) })
}

// checkDoneOnce fails unless every submitted event got exactly one OnDone.
func (m *mirror) checkDoneOnce(hostname string, fs []frame) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range fs {
		if n := m.done[fmt.Sprint(hostname, " ", f.seq)]; n != 1 {
			m.t.Fatalf("seq %d: %d OnDone calls", f.seq, n)
		}
	}
}

// counter sums the series of a counter of the ingest's registry whose
// labels match the given ones.
func (m *mirror) counter(name string, labels map[string]string) float64 {
	m.t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		m.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum
}

// eventuallyTrue polls cond for a few seconds.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// caughtUp waits until db holds did active at the upstream's head (after
// a resync, say).
func caughtUp(t *testing.T, what string, db *store.DB, up *upstream, did string) {
	t.Helper()
	eventuallyTrue(t, what, func() bool {
		a, err := db.Account(did)
		return err == nil && a.Head == head(t, up.db, did) && a.Status == store.StatusActive
	})
}

// decoded is a frame of our log, decoded.
type decoded struct {
	seq int64
	ev  wire.Event
}

func decodeLog(t *testing.T, db *store.DB, after int64) []decoded {
	t.Helper()
	var out []decoded
	for _, f := range frames(t, db, after) {
		ev, err := wire.DecodeFrame(f.bytes)
		if err != nil {
			t.Fatalf("our frame %d does not decode: %v", f.seq, err)
		}
		out = append(out, decoded{f.seq, ev})
	}
	return out
}

// verifyOurCommits checks every #commit of our log in order: each verifies
// with repo.VerifyCommitMessage against the key and the previous commit of
// the same account (the model of what a consumer of our firehose does).
func verifyOurCommits(t *testing.T, log []decoded, keys map[string]atcrypto.PublicKey) map[string][]string {
	t.Helper()
	state := map[string]*repo.RepoState{}
	revs := map[string][]string{}
	for _, d := range log {
		switch ev := d.ev.(type) {
		case *wire.CommitEvent:
			vc, err := repo.VerifyCommitMessage(ev.Message(), repo.VerifyOptions{Key: keys[ev.Repo], Prev: state[ev.Repo]})
			if err != nil {
				t.Fatalf("our #commit %d (%s rev %s) does not verify: %v", d.seq, ev.Repo, ev.Rev, err)
			}
			s := vc.State()
			state[ev.Repo] = &s
			revs[ev.Repo] = append(revs[ev.Repo], ev.Rev)
		case *wire.SyncEvent:
			c, _, err := repo.VerifySyncMessage(ev.Message(), keys[ev.DID])
			if err != nil {
				t.Fatalf("our #sync %d does not verify: %v", d.seq, err)
			}
			state[ev.DID] = &repo.RepoState{Rev: c.Rev, Data: c.Data}
		}
	}
	return revs
}

func pubKeys(u *upstream) map[string]atcrypto.PublicKey {
	out := map[string]atcrypto.PublicKey{}
	for did, k := range u.keys {
		pub, _ := k.PublicKey()
		out[did] = pub
	}
	return out
}

// shuffleInterleave merges per-account frame lists in a random interleaving
// that keeps each list's order.
func shuffleInterleave(rng *rand.Rand, lists [][]frame) []frame {
	var out []frame
	idx := make([]int, len(lists))
	for {
		var open []int
		for i, l := range lists {
			if idx[i] < len(l) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			return out
		}
		i := open[rng.IntN(len(open))]
		out = append(out, lists[i][idx[i]])
		idx[i]++
	}
}
