package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference PDS of check 6, pinned in interop/pds/package.json: the
// newest release that runs on Node 20 (docs: environment.md).
const (
	referencePDSVersion = "0.4.217"
	pdsScript           = "interop/pds/pds.js"
	pdsStartTimeout     = 90 * time.Second
	// mirrorTimeout bounds the wait for the relay to reach the PDS's heads.
	mirrorTimeout = 60 * time.Second
)

var pdsSetup once[string]

// needPDS installs the pinned packages of interop/pds (the reference PDS;
// better-sqlite3 compiles from source on the first install).
func needPDS(t *testing.T) {
	t.Helper()
	if _, err := pdsSetup.get(npmInstall(root(t), "interop/pds", "the reference PDS")); err != nil {
		t.Fatalf("interop: %v", err)
	}
}

// startReferencePDS runs interop/pds/pds.js on a free loopback port with
// plcURL as its directory, and returns its base URL once it answers.
func startReferencePDS(t *testing.T, plcURL string) string {
	t.Helper()
	needPDS(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		cmd := exec.Command("node", pdsScript)
		cmd.Dir = root(t)
		cmd.Env = append(os.Environ(),
			"PDS_PORT="+strconv.Itoa(port),
			"PDS_DATA_DIRECTORY="+t.TempDir(),
			"PDS_DID_PLC_URL="+plcURL,
			"PDS_ADMIN_PASSWORD="+adminPassword,
		)
		c := startChild(t, "the reference PDS", cmd)
		deadline := time.Now().Add(pdsStartTimeout)
		for time.Now().Before(deadline) && c.running() {
			if strings.Contains(c.output.String(), `"port":`) {
				var ready struct {
					Port    int    `json:"port"`
					Version string `json:"version"`
				}
				line, _, _ := strings.Cut(c.output.String(), "\n")
				if err := json.Unmarshal([]byte(line), &ready); err != nil {
					t.Fatalf("pds.js printed %q: %v", line, err)
				}
				if ready.Version != referencePDSVersion || ready.Port != port {
					t.Fatalf("pds.js runs @atproto/pds %s on port %d, want %s on %d (run npm ci in interop/pds)", ready.Version, ready.Port, referencePDSVersion, port)
				}
				return base
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.stop()
		if attempt < 2 && strings.Contains(c.output.String(), "EADDRINUSE") {
			continue
		}
		t.Fatalf("the reference PDS did not start within %s:\n%s", pdsStartTimeout, tail(c.output.String(), 5000))
	}
}

// startRelay runs `reservoir serve --allow-insecure-hosts` with short relay
// timings (the RESERVOIR_RELAY_* variables) on a free loopback port.
func startRelay(t *testing.T, plcURL string) *env {
	t.Helper()
	bin := reservoirBinary(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		cmd := exec.Command(bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", t.TempDir(),
			"--public-url", base, "--plc-url", plcURL, "--admin-password", adminPassword, "--allow-insecure-hosts")
		cmd.Env = append(os.Environ(),
			"RESERVOIR_RELAY_MIN_BACKOFF=50ms", "RESERVOIR_RELAY_MAX_BACKOFF=500ms", "RESERVOIR_RELAY_OFFLINE_AFTER=5",
			"RESERVOIR_RELAY_OFFLINE_RETRY=500ms", "RESERVOIR_RELAY_RECOUNT_INTERVAL=200ms", "RESERVOIR_RELAY_FLUSH_INTERVAL=100ms",
		)
		c := startChild(t, "reservoir relay", cmd)
		e := &env{plc: plcURL, base: base, server: c}
		deadline := time.Now().Add(startTimeout)
		for time.Now().Before(deadline) && c.running() {
			resp, err := http.Get(base + "/xrpc/_health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return e
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.stop()
		if attempt < 2 && strings.Contains(c.output.String(), "address already in use") {
			continue
		}
		t.Fatalf("the relay did not answer within %s:\n%s", startTimeout, tail(c.output.String(), 5000))
	}
}

// labelledSum adds up every sample of a labelled counter on /metrics.
func labelledSum(t *testing.T, base, name string) (sum float64, lines []string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		sum += f
		lines = append(lines, line)
	}
	return sum, lines
}

type pdsAccount struct {
	handle, did, jwt string
}

// latestCommit is getLatestCommit's answer, or code != 200.
func latestCommit(t *testing.T, e *env, did string) (code int, cidStr, rev string) {
	t.Helper()
	code, b := e.call(t, http.MethodGet, "com.atproto.sync.getLatestCommit", url.Values{"did": {did}}, "", "", nil)
	if code != http.StatusOK {
		return code, "", ""
	}
	var out struct{ CID, Rev string }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("getLatestCommit %s: bad JSON %q: %v", did, b, err)
	}
	return code, out.CID, out.Rev
}

// TestReferencePDSUpstream is check 6 of issue 9: the reference PDS
// (@atproto/pds) with `reservoir plc` as its directory is the upstream of a
// reservoir relay. Accounts, posts, likes and deletes are made on the PDS
// (one account and some writes before the crawl, the rest after); the relay
// must reach every account's head as the PDS reports it, serve the same
// repository (root and block set, in any order), count the accounts
// active, and record no verification failure.
func TestReferencePDSUpstream(t *testing.T) {
	testStart := time.Now()
	_, plcURL := startListening(t, "reservoir plc", "/_health", func(port int) []string {
		return []string{"plc", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", t.TempDir()}
	})
	pds := &env{plc: plcURL, base: startReferencePDS(t, plcURL)}
	relay := startRelay(t, plcURL)
	t.Logf("started plc, the reference PDS and the relay in %v", time.Since(testStart).Round(time.Millisecond))

	createAccount := func(handle string) pdsAccount {
		t.Helper()
		var out struct{ DID, AccessJwt string }
		pds.procedure(t, "com.atproto.server.createAccount", "", map[string]any{
			"handle": handle, "email": strings.TrimSuffix(handle, ".test") + "@example.com", "password": "interop-password",
		}, &out)
		if !strings.HasPrefix(out.DID, "did:plc:") || out.AccessJwt == "" {
			t.Fatalf("createAccount %s on the PDS: did %q, jwt %q", handle, out.DID, out.AccessJwt)
		}
		return pdsAccount{handle: handle, did: out.DID, jwt: out.AccessJwt}
	}
	type ref struct{ uri, cid string }
	writes := 0
	post := func(a pdsAccount, text string) ref {
		t.Helper()
		var out struct{ URI, CID string }
		pds.procedure(t, "com.atproto.repo.createRecord", a.jwt, map[string]any{
			"repo": a.did, "collection": "app.bsky.feed.post",
			"record": map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")},
		}, &out)
		writes++
		return ref{out.URI, out.CID}
	}
	like := func(a pdsAccount, subject ref) ref {
		t.Helper()
		var out struct{ URI, CID string }
		pds.procedure(t, "com.atproto.repo.createRecord", a.jwt, map[string]any{
			"repo": a.did, "collection": "app.bsky.feed.like",
			"record": map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": subject.uri, "cid": subject.cid},
				"createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")},
		}, &out)
		writes++
		return ref{out.URI, out.CID}
	}
	del := func(a pdsAccount, r ref) {
		t.Helper()
		// at://DID/COLLECTION/RKEY
		parts := strings.Split(strings.TrimPrefix(r.uri, "at://"), "/")
		if len(parts) != 3 {
			t.Fatalf("createRecord answered the URI %q", r.uri)
		}
		pds.procedure(t, "com.atproto.repo.deleteRecord", a.jwt, map[string]any{
			"repo": a.did, "collection": parts[1], "rkey": parts[2],
		}, nil)
		writes++
	}

	// Before the crawl: one account with a few records (the relay's
	// backfill of the new host must fetch them).
	alice := createAccount("alice.test")
	var alicePosts []ref
	for i := range 4 {
		alicePosts = append(alicePosts, post(alice, fmt.Sprintf("alice before the crawl %d", i)))
	}

	failuresBefore, _ := labelledSum(t, relay.base, "relay_ingest_verify_failures_total")
	hostname := strings.TrimPrefix(pds.base, "http://") // 127.0.0.1:PORT, the host of the accounts' PDS endpoint
	relay.procedure(t, "com.atproto.sync.requestCrawl", "", map[string]any{"hostname": pds.base}, nil)
	// The writes below are to reach the relay live: wait for its
	// subscription to the PDS.
	connectDeadline := time.Now().Add(startTimeout)
	for {
		_, lines := labelledSum(t, relay.base, "relay_upstream_connects_total")
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `result="ok"`) }) {
			break
		}
		if time.Now().After(connectDeadline) {
			t.Fatalf("the relay did not connect to the PDS's firehose within %s after requestCrawl: %v", startTimeout, lines)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// After the crawl: a second account, posts, likes of each other's
	// posts, and deletes of posts and likes, live on the PDS's firehose.
	bob := createAccount("bob.test")
	var bobPosts, likes []ref
	for i := range 4 {
		bobPosts = append(bobPosts, post(bob, fmt.Sprintf("bob %d", i)))
		alicePosts = append(alicePosts, post(alice, fmt.Sprintf("alice after the crawl %d", i)))
	}
	for i := range 3 {
		likes = append(likes, like(alice, bobPosts[i]), like(bob, alicePosts[i]))
	}
	del(alice, alicePosts[1])
	del(bob, bobPosts[2])
	del(alice, likes[0]) // alice's like of bob's post 0
	del(bob, likes[3])   // bob's like of alice's post 1
	liveWrites := writes - 4
	t.Logf("%d writes on the PDS for %s and %s, %d of them after the crawl", writes, alice.did, bob.did, liveWrites)

	// The relay reaches the PDS's head of both accounts.
	accounts := []pdsAccount{alice, bob}
	deadline := time.Now().Add(mirrorTimeout)
	for _, a := range accounts {
		code, wantCID, wantRev := latestCommit(t, pds, a.did)
		if code != http.StatusOK {
			t.Fatalf("getLatestCommit %s on the PDS: %d", a.did, code)
		}
		for {
			code, gotCID, gotRev := latestCommit(t, relay, a.did)
			if code == http.StatusOK && gotCID == wantCID && gotRev == wantRev {
				break
			}
			if time.Now().After(deadline) {
				_, lines := labelledSum(t, relay.base, "relay_ingest_verify_failures_total")
				t.Fatalf("the relay did not reach the PDS's head of %s (%s) within %s: the PDS is at %s rev %s, the relay answers %d %s rev %s; verify failures: %v",
					a.handle, a.did, mirrorTimeout, wantCID, wantRev, code, gotCID, gotRev, lines)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	for _, a := range accounts {
		// Same repository: root and block set.
		q := url.Values{"did": {a.did}}
		fromPDS, err := parseCAR(pds.get(t, "com.atproto.sync.getRepo", q))
		if err != nil {
			t.Fatalf("getRepo %s from the PDS: %v", a.did, err)
		}
		fromRelay, err := parseCAR(relay.get(t, "com.atproto.sync.getRepo", q))
		if err != nil {
			t.Fatalf("getRepo %s from the relay: %v", a.did, err)
		}
		if len(fromPDS.roots) != 1 || len(fromRelay.roots) != 1 || !fromPDS.roots[0].Equals(fromRelay.roots[0]) {
			t.Errorf("getRepo %s: the PDS's CAR has the roots %v, the relay's %v", a.did, fromPDS.roots, fromRelay.roots)
		}
		for c, b := range fromPDS.blocks {
			if got, ok := fromRelay.blocks[c]; !ok {
				t.Errorf("getRepo %s: the relay's CAR lacks the PDS's block %s", a.did, c)
			} else if !bytes.Equal(got, b) {
				t.Errorf("getRepo %s: block %s differs", a.did, c) // unreachable: both hash-checked
			}
		}
		for c := range fromRelay.blocks {
			if _, ok := fromPDS.blocks[c]; !ok {
				t.Errorf("getRepo %s: the relay's CAR has the block %s, which the PDS's has not", a.did, c)
			}
		}
		if fromRelay.dups != 0 {
			t.Errorf("getRepo %s: the relay's CAR repeats %d blocks", a.did, fromRelay.dups)
		}
		t.Logf("%s: %d blocks, root %s, the same from the PDS and the relay", a.handle, len(fromPDS.blocks), fromPDS.roots)

		// The relay counts the account active (not desynchronized).
		var st struct {
			DID    string `json:"did"`
			Active bool   `json:"active"`
			Status string `json:"status"`
			Rev    string `json:"rev"`
		}
		relay.getJSON(t, "com.atproto.sync.getRepoStatus", q, &st)
		if st.DID != a.did || !st.Active || st.Status != "" {
			t.Errorf("getRepoStatus %s on the relay: %+v, want active with no status", a.did, st)
		}
	}

	// The relay's host list names the PDS.
	var hosts struct {
		Hosts []struct {
			Hostname string `json:"hostname"`
			Status   string `json:"status"`
		} `json:"hosts"`
	}
	relay.getJSON(t, "com.atproto.sync.listHosts", nil, &hosts)
	found := false
	for _, h := range hosts.Hosts {
		if strings.EqualFold(h.Hostname, hostname) {
			found = true
			if h.Status != "" && h.Status != "active" {
				t.Errorf("listHosts on the relay: %s is %q, want active", h.Hostname, h.Status)
			}
		}
	}
	if !found {
		t.Errorf("listHosts on the relay: %+v, want %s", hosts.Hosts, hostname)
	}

	if after, lines := labelledSum(t, relay.base, "relay_ingest_verify_failures_total"); after != failuresBefore {
		t.Errorf("the relay counted verification failures for the PDS's commits: %v (before the crawl: %v)", lines, failuresBefore)
	}
	// Every event of the PDS's firehose had a good outcome, and the live
	// writes were applied as commits (not only fetched by a resync).
	_, lines := labelledSum(t, relay.base, "relay_ingest_events_total")
	applied := 0.0
	for _, line := range lines {
		for _, bad := range []string{"invalid", "desynchronized", "dropped_held", "wrong_host", "identity_error", "malformed", "error"} {
			if strings.Contains(line, `outcome="`+bad+`"`) {
				t.Errorf("the relay's ingest of the PDS's firehose: %s", line)
			}
		}
		if strings.Contains(line, `outcome="applied"`) && strings.Contains(line, `type="commit"`) {
			i := strings.LastIndexByte(line, ' ')
			applied, _ = strconv.ParseFloat(line[i+1:], 64)
		}
	}
	if applied < float64(liveWrites) {
		t.Errorf("the relay applied %v commits from the PDS's firehose, want at least the %d writes made after the crawl; events: %v", applied, liveWrites, lines)
	}
	t.Logf("relay ingest: %v", lines)
	t.Logf("check 6 took %v", time.Since(testStart).Round(time.Millisecond))
}
