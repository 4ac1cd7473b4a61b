package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/repo"
)

// TestLeanRelayEndToEnd runs `reservoir plc`, a host and a lean relay
// (`serve --archive=false`) on loopback: the relay's firehose carries the
// host's commits, verifying in order; its state reads answer from the head
// it keeps; its content reads redirect to the host (the same bytes at the
// end of the redirect); listReposByCollection knows the account; an
// admin's takedown of the mirrored account answers RepoTakendown instead
// of the redirect, and its reversal brings the account back.
func TestLeanRelayEndToEnd(t *testing.T) {
	bin := buildReservoir(t)
	deadline := time.Now().Add(55 * time.Second)
	work := t.TempDir()

	plcPort := freePort(t)
	plcURL := "http://127.0.0.1:" + plcPort
	startProcess(t, "plc", bin, nil, "plc", "--listen", "127.0.0.1:"+plcPort, "--data", filepath.Join(work, "plc"))
	waitHTTP(t, plcURL+"/_health")
	hostPort := freePort(t)
	hostURL := "http://127.0.0.1:" + hostPort
	hostName := "localhost:" + hostPort
	startProcess(t, "host", bin, nil, "serve", "--listen", "127.0.0.1:"+hostPort, "--public-url", "http://"+hostName,
		"--plc-url", plcURL, "--admin-password", "pw", "--data", filepath.Join(work, "host"))
	waitHTTP(t, hostURL+"/xrpc/_health")
	relayPort := freePort(t)
	relayURL := "http://127.0.0.1:" + relayPort
	startProcess(t, "relay", bin, []string{"RESERVOIR_RELAY_FLUSH_INTERVAL=100ms"}, "serve", "--listen", "127.0.0.1:"+relayPort,
		"--public-url", "http://localhost:"+relayPort, "--plc-url", plcURL, "--admin-password", "pw",
		"--allow-insecure-hosts", "--archive=false", "--data", filepath.Join(work, "relay"))
	waitHTTP(t, relayURL+"/xrpc/_health")
	fh := subscribeFirehose(t, "ws://127.0.0.1:"+relayPort+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0")

	if code, body := call(t, "POST", relayURL+"/xrpc/com.atproto.sync.requestCrawl", "", `{"hostname":"http://`+hostName+`"}`); code != 200 {
		t.Fatalf("requestCrawl: %d %s", code, body)
	}
	waitFor(t, deadline, "the relay subscribed to the host", func() bool {
		_, metrics := call(t, "GET", hostURL+"/metrics", "", "")
		return strings.Contains(metrics, "\nfirehose_subscribers 1\n")
	})
	code, body := call(t, "POST", hostURL+"/xrpc/com.atproto.server.createAccount", "admin", `{"handle":"dana.test"}`)
	if code != 200 {
		t.Fatalf("createAccount: %d %s", code, body)
	}
	var acct struct{ DID, AccessJwt string }
	json.Unmarshal([]byte(body), &acct)
	did := acct.DID
	write := func(method, rkey string) {
		t.Helper()
		in := fmt.Sprintf(`{"repo":%q,"collection":"app.bsky.feed.post","rkey":%q,"record":{"$type":"app.bsky.feed.post","text":"x","createdAt":"2026-11-26T00:00:00.000Z"}}`, did, rkey)
		if method == "deleteRecord" {
			in = fmt.Sprintf(`{"repo":%q,"collection":"app.bsky.feed.post","rkey":%q}`, did, rkey)
		}
		if code, out := call(t, "POST", hostURL+"/xrpc/com.atproto.repo."+method, acct.AccessJwt, in); code != 200 {
			t.Fatalf("%s: %d %s", method, code, out)
		}
	}
	for _, rkey := range []string{"3lbmqhtxvhs2a", "3lbmqhtxvhs2b", "3lbmqhtxvhs2c"} {
		write("createRecord", rkey)
	}
	write("deleteRecord", "3lbmqhtxvhs2b")
	mirrored := func(what string) {
		t.Helper()
		waitFor(t, deadline, what+": the host's head on the relay", func() bool {
			_, h := call(t, "GET", hostURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", "")
			code, r := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", "")
			return code == 200 && r == h
		})
	}
	mirrored("after the writes")
	// The head is readable as soon as the relay applied the commit; its
	// frame reaches our consumer a moment later.
	waitFor(t, deadline, "the host's head on the relay's firehose", func() bool {
		_, body := call(t, "GET", hostURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", "")
		c := fh.commits(t, did)
		return len(c) > 0 && strings.Contains(body, c[len(c)-1].Commit.String())
	})

	key := signingKey(t, &plc.Client{BaseURL: plcURL}, did)
	var prev *repo.RepoState
	commits := fh.commits(t, did)
	if len(commits) != 5 { // creation, 3 creates, a delete
		t.Fatalf("%d commits on the relay's firehose, want 5", len(commits))
	}
	for i, c := range commits {
		v, err := repo.VerifyCommitMessage(c.Message(), repo.VerifyOptions{Key: key, Prev: prev})
		if err != nil {
			t.Fatalf("commit %d from the lean relay: %v", i, err)
		}
		st := v.State()
		prev = &st
	}

	// Content reads: a redirect to the host, the host's bytes at its end.
	for _, path := range []string{
		"/xrpc/com.atproto.sync.getRepo?did=" + did,
		"/xrpc/com.atproto.sync.getRecord?did=" + did + "&collection=app.bsky.feed.post&rkey=3lbmqhtxvhs2a",
	} {
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(relayURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://"+hostName+path {
			t.Fatalf("%s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		hc, hb := call(t, "GET", hostURL+path, "", "")
		rc, rb := call(t, "GET", relayURL+path, "", "")
		if hc != 200 || rc != 200 || hb != rb {
			t.Fatalf("%s: host %d, relay %d: not the same bytes", path, hc, rc)
		}
	}
	if code, body := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.listReposByCollection?collection=app.bsky.feed.post", "", ""); code != 200 || !strings.Contains(body, did) {
		t.Fatalf("listReposByCollection: %d %s", code, body)
	}

	// A takedown here: RepoTakendown rather than the redirect; reversed.
	if code, body := call(t, "POST", relayURL+"/admin/accounts/"+did+"/takedown", "admin", ""); code != 200 || !strings.Contains(body, `"status":"takendown"`) {
		t.Fatalf("takedown: %d %s", code, body)
	}
	if code, body := call(t, "GET", relayURL+"/xrpc/com.atproto.sync.getRepo?did="+did, "", ""); code != 403 || !strings.Contains(body, "RepoTakendown") {
		t.Fatalf("getRepo of a taken-down account: %d %s", code, body)
	}
	write("createRecord", "3lbmqhtxvhs2d") // dropped while taken down
	if code, body := call(t, "POST", relayURL+"/admin/accounts/"+did+"/reactivate", "admin", ""); code != 200 || !strings.Contains(body, `"active":true`) {
		t.Fatalf("reactivate: %d %s", code, body)
	}
	mirrored("after the reversal (a resync)")
	write("createRecord", "3lbmqhtxvhs2e")
	mirrored("a commit after the reversal")
}
