package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
)

// The client subcommands run against a whole reservoir (serve) and a
// reservoir plc directory, both started in the test as serve_test.go does.

type reservoirTest struct {
	t   *testing.T
	url string // the server's root, also its public URL
	plc string
}

type cliAccount struct{ did, token string }

// startReservoir starts plc and serve. The server listens on a port chosen
// beforehand so that its public URL (the PDS endpoint in DID documents) is
// its real address.
func startReservoir(t *testing.T) *reservoirTest {
	t.Helper()
	plcBase, _, _ := startPLC(t, "--listen", "127.0.0.1:0", "--data", t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := parseServeFlags([]string{"--listen", addr, "--data", t.TempDir(), "--plc-url", plcBase, "--admin-password", "pw", "--public-url", "http://" + addr},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), func(net.Addr) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	return &reservoirTest{t: t, url: "http://" + addr, plc: plcBase}
}

func (r *reservoirTest) call(method, path, auth string, body io.Reader, contentType string) map[string]any {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth == "admin" {
		req.SetBasicAuth("admin", "pw")
	} else if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			r.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

func (r *reservoirTest) procedure(nsid, auth string, in any) map[string]any {
	r.t.Helper()
	b, _ := json.Marshal(in)
	return r.call(http.MethodPost, "/xrpc/"+nsid, auth, bytes.NewReader(b), "application/json")
}

func (r *reservoirTest) createAccount(handle string) cliAccount {
	r.t.Helper()
	out := r.procedure("com.atproto.server.createAccount", "admin", map[string]any{"handle": handle})
	return cliAccount{did: out["did"].(string), token: out["accessJwt"].(string)}
}

// putRecord writes a record and returns the new commit's rev.
func (r *reservoirTest) putRecord(a cliAccount, collection, rkey string, rec map[string]any) string {
	r.t.Helper()
	out := r.procedure("com.atproto.repo.putRecord", a.token, map[string]any{"repo": a.did, "collection": collection, "rkey": rkey, "record": rec})
	return out["commit"].(map[string]any)["rev"].(string)
}

func (r *reservoirTest) uploadBlob(a cliAccount, data []byte, mime string) map[string]any {
	r.t.Helper()
	return r.call(http.MethodPost, "/xrpc/com.atproto.repo.uploadBlob", a.token, bytes.NewReader(data), mime)["blob"].(map[string]any)
}

func (r *reservoirTest) takedown(did string) {
	r.t.Helper()
	r.call(http.MethodPost, "/admin/accounts/"+did+"/takedown", "admin", nil, "")
}

func (r *reservoirTest) latestCommit(did string) (cid, rev string) {
	r.t.Helper()
	out := r.call(http.MethodGet, "/xrpc/com.atproto.sync.getLatestCommit?did="+did, "", nil, "")
	return out["cid"].(string), out["rev"].(string)
}

// signingKey is the account's did:key, from the directory.
func (r *reservoirTest) signingKey(did string) string {
	r.t.Helper()
	doc, err := (&plc.Client{BaseURL: r.plc}).Resolve(context.Background(), syntax.DID(did))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, vm := range doc.VerificationMethod {
		if strings.HasSuffix(vm.ID, "#atproto") {
			k, err := atcrypto.ParsePublicMultibase(vm.PublicKeyMultibase)
			if err != nil {
				r.t.Fatal(err)
			}
			return k.DIDKey()
		}
	}
	r.t.Fatalf("%s: no #atproto key", did)
	return ""
}

func textPost(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T00:00:00.000Z"}
}

// cliResult is one run of a client subcommand.
type cliResult struct {
	code           int
	err            error
	stdout, stderr string
}

// runCLI runs a client subcommand in the test process.
func runCLI(t *testing.T, m clientMain, args ...string) cliResult {
	t.Helper()
	return runCLIContext(context.Background(), t, m, &syncBuffer{}, args...)
}

func runCLIContext(ctx context.Context, t *testing.T, m clientMain, stdout io.Writer, args ...string) cliResult {
	t.Helper()
	errb := &syncBuffer{}
	err := m(ctx, &cliIO{stdout: stdout, stderr: errb, getenv: func(string) string { return "" }}, args)
	r := cliResult{code: exitCode(err), err: err, stderr: errb.String()}
	if s, ok := stdout.(interface{ String() string }); ok {
		r.stdout = s.String()
	}
	return r
}

// lineWatcher is a stdout that calls onLine for each complete line.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	lines  []string
	onLine func(line string, n int)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf.Next(i + 1))
		w.lines = append(w.lines, strings.TrimSuffix(line, "\n"))
		if w.onLine != nil {
			w.onLine(line, len(w.lines))
		}
	}
}

func (w *lineWatcher) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

func TestClientSubcommandsHelpAndUsage(t *testing.T) {
	mains := map[string]clientMain{
		"subscribe": runSubscribe, "export": runExport, "blobs": runBlobs, "verify": runVerify,
		"inspect": runInspect, "status": runStatus, "hosts": runHosts,
	}
	for name, m := range mains {
		r := runCLI(t, m, "--help")
		if r.code != 0 || !strings.Contains(r.stderr, "usage: reservoir "+name) || !strings.Contains(r.stderr, "example:\n  reservoir ") {
			t.Errorf("%s --help: exit %d\n%s", name, r.code, r.stderr)
		}
		for _, args := range [][]string{{}, {"--no-such-flag", "x"}, {"a", "b", "c"}} {
			if r := runCLI(t, m, args...); r.code != 2 {
				t.Errorf("%s %q: exit %d (%v), want 2", name, args, r.code, r.err)
			}
		}
	}
	bad := map[string][]string{
		"export --format zip":    {"--format", "zip", "did:plc:abc"},
		"export not a DID":       {"alice"},
		"export --since dir":     {"--format", "dir", "--since", "3l2uygzaf5v2b", "did:plc:abc"},
		"export --since bad":     {"--since", "yesterday", "did:plc:abc"},
		"export --key bad":       {"--key", "did:key:nope", "did:plc:abc"},
		"blobs without -o":       {"did:plc:abc"},
		"blobs --parallel 0":     {"-o", t.TempDir(), "--parallel", "0", "did:plc:abc"},
		"subscribe --cursor -1":  {"--cursor", "-1", "ws://localhost:1"},
		"subscribe --types nope": {"--types", "commit,nope", "ws://localhost:1"},
		"subscribe bad URL":      {"ftp://x"},
		"hosts bad URL":          {"localhost"},
	}
	for name, args := range bad {
		m := mains[strings.Fields(name)[0]]
		if r := runCLI(t, m, args...); r.code != 2 {
			t.Errorf("%s: exit %d (%v), want 2", name, r.code, r.err)
		}
	}
	// Flags may follow the arguments.
	fs := newFlagSet(&cliIO{stderr: io.Discard}, commandHelp{name: "x"})
	o := fs.String("o", "", "")
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"did:plc:abc", "-o", "out", "second", "-v", "--", "-o"})
	if err != nil || *o != "out" || !*v || strings.Join(pos, " ") != "did:plc:abc second -o" {
		t.Errorf("parseArgs: %q %q %v %v", pos, *o, *v, err)
	}
}
