package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/reservoir-atproto/reservoir/plc"
)

// syncBuffer is a log sink the server goroutine and the test both use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPLC runs `reservoir plc` with args until the returned stop is
// called; stop returns plcMain's error.
func startPLC(t *testing.T, args ...string) (base string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- plcMain(ctx, args, logs, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("plc exited before listening: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("plc did not start\n%s", logs)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("plc did not shut down")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return base, logs, stop
}

func TestPLCSubcommand(t *testing.T) {
	data := t.TempDir()
	base, logs, stop := startPLC(t, "--listen", "127.0.0.1:0", "--data", data)
	if !strings.Contains(logs.String(), "plc directory listening") || !strings.Contains(logs.String(), strings.TrimPrefix(base, "http://")) {
		t.Errorf("the listening address is not logged:\n%s", logs)
	}
	resp, err := http.Get(base + "/_health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), `{"version":`) {
		t.Fatalf("/_health = %d %s", resp.StatusCode, body)
	}

	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	client := &plc.Client{BaseURL: base}
	did, _, err := client.CreateAccount(context.Background(), plc.Account{
		Handle: "alice.test", Endpoint: "http://localhost:2480", SigningKey: pub, RotationKeys: []atcrypto.PublicKey{pub},
	}, key)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("shutdown not logged:\n%s", logs)
	}

	// The DID survives a restart on the same data directory; the listen
	// address comes from the environment this time.
	t.Setenv("RESERVOIR_PLC_LISTEN", "127.0.0.1:0")
	base, _, _ = startPLC(t, "--data", data)
	doc, err := (&plc.Client{BaseURL: base}).Resolve(context.Background(), did)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if doc.Service[0].ServiceEndpoint != "http://localhost:2480" {
		t.Errorf("document after restart: %+v", doc)
	}
}

func TestPLCSubcommandErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"plc", "--no-such-flag"}, &out, &errb); code != 1 {
		t.Errorf("unknown flag exited %d", code)
	}
	if code := run([]string{"plc", "--data", t.TempDir(), "--listen", "127.0.0.1:-1"}, &out, &errb); code != 1 {
		t.Errorf("bad listen address exited %d", code)
	}
	if code := run([]string{"plc", "stray"}, &out, &errb); code != 1 {
		t.Errorf("stray argument exited %d", code)
	}
	if !strings.Contains(errb.String(), "reservoir:") {
		t.Errorf("errors not reported: %s", errb.String())
	}
	errb.Reset()
	if err := plcMain(context.Background(), []string{"-h"}, &errb, nil); err != nil || !strings.Contains(errb.String(), "--listen") {
		t.Errorf("-h: %v\n%s", err, errb.String())
	}
}
