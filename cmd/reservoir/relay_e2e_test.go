package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/repo"
)

// TestRelayEndToEnd runs the binary three times on loopback — `reservoir
// plc`, a reservoir host, and a reservoir relay with --allow-insecure-hosts
// — and checks the relay through its public interface only: it crawls the
// host on request; the host's writes come out of the relay's firehose as
// commits that verify against the keys in the directory; the relay's
// getRepo and getRecord give the host's bytes; listHosts shows the host's
// seq and account count. Then the host's lifecycle: killed (offline),
// restarted on the same port (picked up again by itself), banned (no more
// events, crawl requests refused), unbanned (the events of the ban arrive).
func TestRelayEndToEnd(t *testing.T) {
	start := time.Now()
	bin := buildReservoir(t)
	t.Logf("built the binary in %v", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(55 * time.Second) // for everything after the build
	work := t.TempDir()

	plcPort := freePort(t)
	plcURL := "http://127.0.0.1:" + plcPort
	startProcess(t, "plc", bin, nil, "plc", "--listen", "127.0.0.1:"+plcPort, "--data", filepath.Join(work, "plc"))
	waitHTTP(t, plcURL+"/_health")

	hostPort := freePort(t)
	hostURL := "http://127.0.0.1:" + hostPort
	hostName := "localhost:" + hostPort
	hostArgs := []string{"serve", "--listen", "127.0.0.1:" + hostPort, "--public-url", "http://" + hostName,
		"--plc-url", plcURL, "--admin-password", "pw", "--data", filepath.Join(work, "host")}
	host := startProcess(t, "host", bin, nil, hostArgs...)
	waitHTTP(t, hostURL+"/xrpc/_health")

	relayPort := freePort(t)
	relayURL := "http://127.0.0.1:" + relayPort
	relayEnv := []string{
		"RESERVOIR_RELAY_MIN_BACKOFF=50ms", "RESERVOIR_RELAY_MAX_BACKOFF=200ms", "RESERVOIR_RELAY_OFFLINE_AFTER=3",
		"RESERVOIR_RELAY_OFFLINE_RETRY=300ms", "RESERVOIR_RELAY_RECOUNT_INTERVAL=200ms", "RESERVOIR_RELAY_FLUSH_INTERVAL=100ms",
	}
	startProcess(t, "relay", bin, relayEnv, "serve", "--listen", "127.0.0.1:"+relayPort, "--public-url", "http://localhost:"+relayPort,
		"--plc-url", plcURL, "--admin-password", "pw", "--allow-insecure-hosts", "--data", filepath.Join(work, "relay"))
	waitHTTP(t, relayURL+"/xrpc/_health")

	fh := subscribeFirehose(t, "ws://127.0.0.1:"+relayPort+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0")

	type account struct{ did, token string }
	createAccount := func(handle string) account {
		t.Helper()
		code, body := call(t, "POST", hostURL+"/xrpc/com.atproto.server.createAccount", "admin", `{"handle":"`+handle+`"}`)
		if code != 200 {
			t.Fatalf("createAccount: %d %s", code, body)
		}
		var out struct{ DID, AccessJwt string }
		json.Unmarshal([]byte(body), &out)
		return account{out.DID, out.AccessJwt}
	}
	write := func(a account, method, rkey, text string) {
		t.Helper()
		body := fmt.Sprintf(`{"repo":%q,"collection":"app.bsky.feed.post","rkey":%q,"record":{"$type":"app.bsky.feed.post","text":%q,"createdAt":"2026-11-26T00:00:00.000Z"}}`, a.did, rkey, text)
		if method == "deleteRecord" {
			body = fmt.Sprintf(`{"repo":%q,"collection":"app.bsky.feed.post","rkey":%q}`, a.did, rkey)
		}
		if code, out := call(t, "POST", hostURL+"/xrpc/com.atproto.repo."+method, a.token, body); code != 200 {
			t.Fatalf("%s: %d %s", method, code, out)
		}
	}
	// An account with records from before the crawl: the relay's backfill
	// of the new host fetches it whole.
	carol := createAccount("carol.test")
	write(carol, "createRecord", "3lbmqhtxvhs2a", "carol 0")
	write(carol, "createRecord", "3lbmqhtxvhs2b", "carol 1")

	// The relay crawls the host on request, and is subscribed at once.
	if code, body := call(t, "POST", relayURL+"/xrpc/com.atproto.sync.requestCrawl", "", `{"hostname":"http://`+hostName+`"}`); code != 200 {
		t.Fatalf("requestCrawl: %d %s", code, body)
	}
	waitFor(t, deadline, "the relay subscribed to the host", func() bool {
		_, metrics := call(t, "GET", hostURL+"/metrics", "", "")
		return strings.Contains(metrics, "\nfirehose_subscribers 1\n")
	})

	// Accounts and writes on the host.
	accts := []account{createAccount("alice.test"), createAccount("bob.test")}
	for i := range 3 {
		write(accts[0], "createRecord", fmt.Sprintf("3lbmqhtxvhs2%c", 'a'+i), fmt.Sprintf("alice %d", i))
		write(accts[1], "createRecord", fmt.Sprintf("3lbmqhtxvhs2%c", 'a'+i), fmt.Sprintf("bob %d", i))
	}
	write(accts[1], "putRecord", "3lbmqhtxvhs2a", "bob 0, edited")
	write(accts[1], "deleteRecord", "3lbmqhtxvhs2b", "")

	mirrored := func(what string) {
		t.Helper()
		for _, a := range append([]account{carol}, accts...) {
			waitFor(t, deadline, what+": "+a.did+" at the host's head on the relay", func() bool {
				_, h := call(t, "GET", hostURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+a.did, "", "")
				code, r := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+a.did, "", "")
				return code == 200 && r == h
			})
		}
	}
	mirrored("after the writes")

	// The relay's firehose: every commit verifies, in order, against the
	// key in the directory and the state of the commit before it, and the
	// last one is the host's head.
	dir := &plc.Client{BaseURL: plcURL}
	checkCommits := func() {
		t.Helper()
		for _, a := range accts {
			waitFor(t, deadline, a.did+"'s last commit on the relay's firehose", func() bool {
				_, body := call(t, "GET", hostURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+a.did, "", "")
				c := fh.commits(t, a.did)
				return len(c) > 0 && strings.Contains(body, c[len(c)-1].Commit.String())
			})
			commits := fh.commits(t, a.did)
			if len(commits) == 0 {
				t.Fatalf("no commit of %s on the relay's firehose", a.did)
			}
			key := signingKey(t, dir, a.did)
			var prev *repo.RepoState
			for i, c := range commits {
				v, err := repo.VerifyCommitMessage(c.Message(), repo.VerifyOptions{Key: key, Prev: prev})
				if err != nil {
					t.Fatalf("%s commit %d (rev %s) from the relay: %v", a.did, i, c.Rev, err)
				}
				st := v.State()
				prev = &st
			}
			_, body := call(t, "GET", hostURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+a.did, "", "")
			if last := commits[len(commits)-1]; !strings.Contains(body, last.Commit.String()) {
				t.Fatalf("%s: last commit on the relay's firehose %s, host head %s", a.did, last.Commit, body)
			}
		}
	}
	checkCommits()
	if n := len(fh.commits(t, accts[1].did)); n != 6 { // creation, 3 creates, an update, a delete
		t.Fatalf("%d commits of bob on the relay's firehose, want 6", n)
	}

	// The same bytes from both: whole repositories and record proofs.
	sameBytes := func() {
		t.Helper()
		for _, a := range append([]account{carol}, accts...) {
			for _, path := range []string{
				"/xrpc/com.atproto.sync.getRepo?did=" + a.did,
				"/xrpc/com.atproto.sync.getRecord?did=" + a.did + "&collection=app.bsky.feed.post&rkey=3lbmqhtxvhs2a",
				"/xrpc/com.atproto.sync.getRecord?did=" + a.did + "&collection=app.bsky.feed.post&rkey=3lbmqhtxvhs2b",
			} {
				hc, hb := call(t, "GET", hostURL+path, "", "")
				rc, rb := call(t, "GET", relayURL+path, "", "")
				if hc != 200 || rc != 200 || hb != rb {
					t.Fatalf("%s: host %d (%d bytes), relay %d (%d bytes): not the same CAR", path, hc, len(hb), rc, len(rb))
				}
			}
		}
	}
	sameBytes()
	// Carol came whole, announced with a #sync of her head.
	waitFor(t, deadline, "the #sync of the backfilled account on the relay's firehose", func() bool {
		return fh.syncs(t, carol.did) > 0
	})
	write(carol, "createRecord", "3lbmqhtxvhs2c", "carol 2, after the crawl")
	mirrored("a commit on top of the backfilled repository")

	// listHosts: the host, with the last seq of its firehose and its
	// accounts.
	hostSeq := lastSeq(t, "ws://127.0.0.1:"+hostPort+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0")
	wantHost := func(status string, seq int64, accounts int) func() bool {
		return func() bool {
			_, body := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.listHosts", "", "")
			var out struct {
				Hosts []struct {
					Hostname     string
					Seq          *int64
					AccountCount int
					Status       string
				}
			}
			json.Unmarshal([]byte(body), &out)
			return len(out.Hosts) == 1 && out.Hosts[0].Hostname == hostName && out.Hosts[0].Status == status &&
				(seq < 0 || (out.Hosts[0].Seq != nil && *out.Hosts[0].Seq == seq)) && (accounts < 0 || out.Hosts[0].AccountCount == accounts)
		}
	}
	waitFor(t, deadline, fmt.Sprintf("listHosts: active, seq %d, 3 accounts", hostSeq), wantHost("active", hostSeq, 3))

	// The host dies: offline after a few failed attempts.
	host.kill()
	waitFor(t, deadline, "the host offline", wantHost("offline", -1, -1))
	// It comes back on the same port: picked up again, by itself.
	host = startProcess(t, "host", bin, nil, hostArgs...)
	waitHTTP(t, hostURL+"/xrpc/_health")
	waitFor(t, deadline, "the host active again", wantHost("active", -1, -1))
	write(accts[0], "createRecord", "3lbmqhtxvhs2x", "alice after the restart")
	mirrored("after the host's restart")

	// Banned: no more events, crawl requests refused.
	if code, body := call(t, "POST", relayURL+"/admin/hosts/"+hostName+"/ban", "admin", ""); code != 200 || !strings.Contains(body, `"status":"banned"`) {
		t.Fatalf("ban: %d %s", code, body)
	}
	waitFor(t, deadline, "the relay unsubscribed", func() bool {
		_, metrics := call(t, "GET", hostURL+"/metrics", "", "")
		return strings.Contains(metrics, "\nfirehose_subscribers 0\n")
	})
	_, before := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+accts[0].did, "", "")
	nCommits := len(fh.commits(t, accts[0].did))
	write(accts[0], "createRecord", "3lbmqhtxvhs2y", "alice during the ban")
	if code, body := call(t, "POST", relayURL+"/xrpc/com.atproto.sync.requestCrawl", "", `{"hostname":"http://`+hostName+`"}`); code != 403 || !strings.Contains(body, "HostBanned") {
		t.Fatalf("requestCrawl of a banned host: %d %s", code, body)
	}
	time.Sleep(500 * time.Millisecond)
	if _, after := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+accts[0].did, "", ""); after != before || len(fh.commits(t, accts[0].did)) != nCommits {
		t.Fatal("a commit of a banned host reached the relay")
	}
	// Unbanned: it resumes after its cursor, so the write of the ban comes.
	if code, body := call(t, "POST", relayURL+"/admin/hosts/"+hostName+"/unban", "admin", ""); code != 200 || !strings.Contains(body, `"status":"active"`) {
		t.Fatalf("unban: %d %s", code, body)
	}
	mirrored("after the unban")
	checkCommits()
	sameBytes()
	hostSeq = lastSeq(t, "ws://127.0.0.1:"+hostPort+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0")
	waitFor(t, deadline, fmt.Sprintf("listHosts: seq %d", hostSeq), wantHost("active", hostSeq, 3))
}

// buildReservoir builds the binary into a temporary directory.
func buildReservoir(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reservoir")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port nothing listens on (for a process that
// must be restarted on the same port).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// process is a running subcommand of the binary.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, cmd: exec.Command(bin, args...), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs)
		}
	})
	return p
}

// kill ends the process at once (a crash).
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// stop asks the process to shut down, then kills it after 10s.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not stop within 10s", p.name)
		p.kill()
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("%v waiting for %s", d.Round(time.Millisecond), what)
	}
}

// call makes a request; auth is "admin", a bearer token, or "".
func call(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case auth == "admin":
		req.SetBasicAuth("admin", "pw")
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// firehose is a consumer of a firehose that keeps every #commit by DID.
type firehose struct {
	mu    sync.Mutex
	byID  map[string][]*wire.CommitEvent
	syncN map[string]int
	err   error
}

func subscribeFirehose(t *testing.T, url string) *firehose {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &firehose{byID: map[string][]*wire.CommitEvent{}, syncN: map[string]int{}}
	go func() {
		var last int64
		for {
			_, frame, err := c.ReadMessage()
			if err != nil {
				return
			}
			ev, err := wire.DecodeFrame(frame)
			f.mu.Lock()
			switch e := ev.(type) {
			case nil:
				f.err = fmt.Errorf("a frame that does not decode: %w", err)
			case interface{ EventSeq() int64 }:
				if s := e.EventSeq(); s <= last {
					f.err = fmt.Errorf("seq %d after %d", s, last)
				} else {
					last = s
				}
			}
			switch e := ev.(type) {
			case *wire.CommitEvent:
				f.byID[e.Repo] = append(f.byID[e.Repo], e)
			case *wire.SyncEvent:
				f.syncN[e.DID]++
			}
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *firehose) commits(t *testing.T, did string) []*wire.CommitEvent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatalf("the relay's firehose: %v", f.err)
	}
	return append([]*wire.CommitEvent(nil), f.byID[did]...)
}

func (f *firehose) syncs(t *testing.T, did string) int {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatalf("the relay's firehose: %v", f.err)
	}
	return f.syncN[did]
}

// lastSeq reads a firehose from its start until it is quiet and returns
// the last seq.
func lastSeq(t *testing.T, url string) int64 {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var last int64
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, frame, err := c.ReadMessage()
		if err != nil {
			return last
		}
		ev, err := wire.DecodeFrame(frame)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := ev.(interface{ EventSeq() int64 }); ok {
			last = e.EventSeq()
		}
	}
}

// signingKey is the account's #atproto key in the directory.
func signingKey(t *testing.T, dir *plc.Client, did string) atcrypto.PublicKey {
	t.Helper()
	doc, err := dir.Resolve(context.Background(), syntax.DID(did))
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range doc.VerificationMethod {
		if vm.ID == did+"#atproto" {
			k, err := atcrypto.ParsePublicMultibase(vm.PublicKeyMultibase)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
	t.Fatalf("%s: no #atproto key", did)
	return nil
}
