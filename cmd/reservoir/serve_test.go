package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/plc"
)

func TestParseServeFlags(t *testing.T) {
	env := map[string]string{"RESERVOIR_LISTEN": "127.0.0.1:9", "RESERVOIR_ARCHIVE": "false", "RESERVOIR_RELAYS": "https://a.example, https://b.example"}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseServeFlags([]string{"--data", "/tmp/x", "--replay-window", "24h"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9" || cfg.Data != "/tmp/x" || cfg.Archive || cfg.ReplayWindow != 24*time.Hour ||
		len(cfg.Relays) != 2 || cfg.Relays[1] != "https://b.example" || cfg.PLCURL != "https://plc.directory" || cfg.PublicURL != "http://localhost:2480" {
		t.Fatalf("config %+v", cfg)
	}
	// A flag wins over its environment twin.
	cfg, _ = parseServeFlags([]string{"--listen", ":1"}, getenv, io.Discard)
	if cfg.Listen != ":1" {
		t.Fatalf("flag did not override the environment: %s", cfg.Listen)
	}
	if cfg.MaxSubscribers != 10_000 {
		t.Fatalf("default max subscribers %d", cfg.MaxSubscribers)
	}
	if cfg, _ := parseServeFlags([]string{"--max-subscribers", "3"}, getenv, io.Discard); cfg.MaxSubscribers != 3 {
		t.Fatal("--max-subscribers not read")
	}
	for _, bad := range [][]string{{"--max-subscribers", "0"}, {"--archive=maybe"}, {"--replay-window", "-1h"}, {"--public-url", "ftp://x"}, {"--plc-url", "nope"}, {"stray"}} {
		if _, err := parseServeFlags(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestServeEndToEnd runs the real wiring of `reservoir serve` against a
// `reservoir plc`: health, account creation through the directory, writes
// with the account's token, a wrong token refused with 401 (not 500), and a
// graceful shutdown.
func TestServeEndToEnd(t *testing.T) {
	plcBase, _, stopPLC := startPLC(t, "--listen", "127.0.0.1:0", "--data", t.TempDir())
	defer stopPLC()
	cfg, err := parseServeFlags([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--plc-url", plcBase, "--admin-password", "pw", "--public-url", "http://127.0.0.1:2480"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	call := func(method, path, auth, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		switch {
		case auth == "admin":
			req.SetBasicAuth("admin", "pw")
		case auth != "":
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := call("GET", "/xrpc/_health", "", ""); code != 200 || out["version"] == nil {
		t.Fatalf("health: %d %v", code, out)
	}
	if code, out := call("POST", "/xrpc/com.atproto.server.createAccount", "", `{"handle":"alice.test"}`); code != 401 {
		t.Fatalf("createAccount without admin auth: %d %v", code, out)
	}
	code, acct := call("POST", "/xrpc/com.atproto.server.createAccount", "admin", `{"handle":"alice.test"}`)
	if code != 200 {
		t.Fatalf("createAccount: %d %v", code, acct)
	}
	did, token := acct["did"].(string), acct["accessJwt"].(string)
	doc, err := (&plc.Client{BaseURL: plcBase}).Resolve(ctx, syntax.DID(did))
	if err != nil || doc.Service[0].ServiceEndpoint != "http://127.0.0.1:2480" {
		t.Fatalf("the new DID in the directory: %+v %v", doc, err)
	}
	// Another service resolves the new DID through the directory to the
	// account's signing key and to this host as its PDS.
	res, err := identity.New(identity.Options{PLCURL: plcBase, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LookupDID(ctx, syntax.DID(did))
	if err != nil {
		t.Fatalf("resolving %s: %v", did, err)
	}
	if id.PDSEndpoint != "http://127.0.0.1:2480" {
		t.Fatalf("resolved PDS endpoint %q", id.PDSEndpoint)
	}
	if docKey := acct["didDoc"].(map[string]any)["verificationMethod"].([]any)[0].(map[string]any)["publicKeyMultibase"]; id.SigningKey.Multibase() != docKey {
		t.Fatalf("resolved key %s, the account's %v", id.SigningKey.Multibase(), docKey)
	}
	rec := `{"repo":"` + did + `","collection":"app.bsky.feed.post","record":{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2026-11-26T00:00:00Z"}}`
	if code, out := call("POST", "/xrpc/com.atproto.repo.createRecord", token, rec); code != 200 || out["uri"] == nil {
		t.Fatalf("createRecord: %d %v", code, out)
	}
	for _, bad := range []string{"garbage", token + "x"} {
		if code, out := call("POST", "/xrpc/com.atproto.repo.createRecord", bad, rec); code != 401 {
			t.Fatalf("createRecord with token %q: %d %v", bad, code, out)
		}
		if code, out := call("GET", "/xrpc/com.atproto.sync.getLatestCommit?did="+did, bad, ""); code != 401 {
			t.Fatalf("optional auth with a wrong token: %d %v", code, out)
		}
	}
	if code, out := call("GET", "/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", ""); code != 200 || out["rev"] == nil {
		t.Fatalf("getLatestCommit: %d %v", code, out)
	}
	if code, _ := call("POST", "/admin/accounts/"+did+"/takedown", "admin", ""); code != 200 {
		t.Fatalf("admin takedown: %d", code)
	}
	if code, out := call("GET", "/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", ""); code != 403 || out["error"] != "RepoTakendown" {
		t.Fatalf("after takedown: %d %v", code, out)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "xrpc_requests_total") {
		t.Fatal("/metrics lacks the request counter")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
}
