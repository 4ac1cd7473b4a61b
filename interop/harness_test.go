package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// The pinned reference versions (interop/atproto/package.json): the harness
// reports what it loaded, and a mismatch fails the test, so a lockfile that
// drifted cannot pass silently.
var referenceLibraries = map[string]string{
	"@atproto/repo":     "0.8.13",
	"@atproto/sync":     "0.1.40",
	"@atproto/identity": "0.4.12",
	"@atproto/crypto":   "0.4.5",
	"@atproto/common":   "0.5.16",
}

const (
	adminPassword = "interop-admin"
	harnessScript = "interop/atproto/atproto-interop.js"
	// Bounds of the waits: node calls, installs, child start and stop.
	nodeTimeout    = 3 * time.Minute
	installTimeout = 5 * time.Minute
	startTimeout   = 30 * time.Second
	stopGrace      = 15 * time.Second
)

// tmpRoot holds the binary built for the whole package run.
var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reservoir-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// once runs f the first time and remembers its result (the tests of a
// package run one after another; a failed setup fails every test that
// needs it, with the same message).
type once[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (o *once[T]) get(f func() (T, error)) (T, error) {
	o.once.Do(func() { o.v, o.err = f() })
	return o.v, o.err
}

var (
	nodeSetup    once[string]
	goatSetup    once[string]
	binarySetup  once[string]
	moduleRootMu sync.Mutex
	moduleRoot   string
)

func root(t *testing.T) string {
	t.Helper()
	moduleRootMu.Lock()
	defer moduleRootMu.Unlock()
	if moduleRoot == "" {
		moduleRoot = testutil.ModuleRoot(t)
	}
	return moduleRoot
}

// needNode checks for node and npm and installs the pinned packages of
// interop/atproto. Without them the test fails: it is not optional.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := nodeSetup.get(npmInstall(root(t), "interop/atproto", "the reference TypeScript implementation")); err != nil {
		t.Fatalf("interop: %v", err)
	}
}

// npmInstall returns the setup step that checks for node, npm and bash and
// installs the pinned packages of dir (scripts/interop-npm.sh).
func npmInstall(root, dir, what string) func() (string, error) {
	return func() (string, error) {
		for _, tool := range []string{"node", "npm", "bash"} {
			if _, err := exec.LookPath(tool); err != nil {
				return "", fmt.Errorf("%s is not on PATH. The interop tests need Node 20+ and npm to run %s (%s); install them, the tests are not skipped", tool, what, dir)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "scripts/interop-npm.sh", dir)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("scripts/interop-npm.sh %s failed: %v\n%s", dir, err, out)
		}
		return "", nil
	}
}

// needGoat installs the pinned goat (scripts/interop-goat.sh) into bin/ of
// the module and returns its path.
func needGoat(t *testing.T) string {
	t.Helper()
	r := root(t)
	path, err := goatSetup.get(func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "scripts/interop-goat.sh")
		cmd.Dir = r
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("scripts/interop-goat.sh failed: %v\n%s", err, stderr.String())
		}
		return strings.TrimSpace(string(out)), nil
	})
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	return path
}

// reservoirBinary builds ./cmd/reservoir once (with -race when the tests
// run with it) and returns its path. RESERVOIR_INTEROP_BINARY names a
// binary to check instead (a release, or a build of another checkout).
func reservoirBinary(t *testing.T) string {
	t.Helper()
	r := root(t)
	path, err := binarySetup.get(func() (string, error) {
		if bin := os.Getenv("RESERVOIR_INTEROP_BINARY"); bin != "" {
			return bin, nil
		}
		bin := filepath.Join(tmpRoot, "reservoir")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/reservoir")
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = r
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return bin, nil
	})
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	return path
}

func checkLibraries(t *testing.T, got map[string]string) {
	t.Helper()
	for name, want := range referenceLibraries {
		if got[name] != want {
			t.Fatalf("the harness loaded %s %q, the pinned version is %s (run npm ci in interop/atproto)", name, got[name], want)
		}
	}
}

// ---- child processes ----

// syncBuffer is an output buffer written by a child and read by the test.
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

// child is a process started by a test and stopped when it ends.
type child struct {
	name   string
	cmd    *exec.Cmd
	output *syncBuffer // stdout and stderr, unless the caller took them
	exited chan struct{}
	err    error
}

// startChild starts cmd and registers its stop (SIGTERM, SIGKILL after
// stopGrace) with t.Cleanup. Unless cmd already has them, stdout and stderr
// go to the child's output buffer; a data race reported there fails t.
func startChild(t *testing.T, name string, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{name: name, cmd: cmd, output: &syncBuffer{}, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = c.output
	}
	if cmd.Stderr == nil {
		cmd.Stderr = c.output
	}
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stop()
		out := c.output.String()
		if strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", name, tail(out, 20000))
		} else if t.Failed() && out != "" {
			t.Logf("the output of %s (the end):\n%s", name, tail(out, 4000))
		}
	})
	return c
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop ends the child: SIGTERM, then SIGKILL after stopGrace.
func (c *child) stop() {
	if !c.running() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(stopGrace):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startListening runs a reservoir subcommand on a free loopback port until
// health answers 200, retrying on another port if the chosen one was taken
// in between.
func startListening(t *testing.T, name string, health string, args func(port int) []string) (*child, string) {
	t.Helper()
	bin := reservoirBinary(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		c := startChild(t, name, exec.Command(bin, args(port)...))
		deadline := time.Now().Add(startTimeout)
		for time.Now().Before(deadline) && c.running() {
			resp, err := http.Get(base + health)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return c, base
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.stop()
		if attempt < 2 && strings.Contains(c.output.String(), "address already in use") {
			continue
		}
		t.Fatalf("%s did not answer %s within %s:\n%s", name, health, startTimeout, tail(c.output.String(), 5000))
	}
}

// env is one `reservoir plc` and one `reservoir serve` using it.
type env struct {
	plc    string // http://127.0.0.1:PORT of the directory
	base   string // http://127.0.0.1:PORT of the server (its --public-url)
	server *child
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, plcURL := startListening(t, "reservoir plc", "/_health", func(port int) []string {
		return []string{"plc", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", t.TempDir()}
	})
	srv, base := startListening(t, "reservoir serve", "/xrpc/_health", func(port int) []string {
		return []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", t.TempDir(),
			"--public-url", fmt.Sprintf("http://127.0.0.1:%d", port), "--plc-url", plcURL, "--admin-password", adminPassword}
	})
	return &env{plc: plcURL, base: base, server: srv}
}

// wsURL is the server's root as a websocket URL.
func (e *env) wsURL() string { return "ws://" + strings.TrimPrefix(e.base, "http://") }

// call does one XRPC request. auth is "admin" (Basic), a bearer token, or
// empty.
func (e *env) call(t *testing.T, method, nsid string, q url.Values, auth, contentType string, body []byte) (int, []byte) {
	t.Helper()
	u := e.base + "/xrpc/" + nsid
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case auth == "admin":
		req.SetBasicAuth("admin", adminPassword)
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, nsid, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, nsid, err)
	}
	return resp.StatusCode, b
}

// get is a query that must answer 200; its body is returned.
func (e *env) get(t *testing.T, nsid string, q url.Values) []byte {
	t.Helper()
	code, b := e.call(t, http.MethodGet, nsid, q, "", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s?%s: %d %s", nsid, q.Encode(), code, b)
	}
	return b
}

// getJSON is a query that must answer 200 with JSON.
func (e *env) getJSON(t *testing.T, nsid string, q url.Values, out any) {
	t.Helper()
	if err := json.Unmarshal(e.get(t, nsid, q), out); err != nil {
		t.Fatalf("GET %s: bad JSON: %v", nsid, err)
	}
}

// procedure is a JSON procedure that must answer 200.
func (e *env) procedure(t *testing.T, nsid, auth string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	code, b := e.call(t, http.MethodPost, nsid, nil, auth, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("POST %s %s: %d %s", nsid, tail(string(body), 500), code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: bad JSON answer %q: %v", nsid, b, err)
		}
	}
}

// metric reads one unlabelled sample from /metrics (-1 if absent).
func (e *env) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(e.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitSubscribers waits until the server counts n firehose subscribers.
func (e *env) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if e.metric(t, "firehose_subscribers") >= float64(n) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the server did not count %d firehose subscribers within %s (firehose_subscribers = %v)", n, startTimeout, e.metric(t, "firehose_subscribers"))
}

// ---- the node harness ----

// runNode runs the harness in mode with in as JSON on stdin and decodes its
// JSON answer into out.
func runNode(t *testing.T, mode string, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", harnessScript, mode)
	cmd.Dir = root(t)
	cmd.Stdin = bytes.NewReader(b)
	cmd.WaitDelay = stopGrace
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %s: %v\n%s", harnessScript, mode, err, tail(stderr.String(), 8000))
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("node %s %s printed bad JSON: %v\n%s", harnessScript, mode, err, tail(string(res), 2000))
	}
}

// ---- CAR files, read independently of reservoir's car package ----

type carFile struct {
	roots  []cid.Cid
	blocks map[cid.Cid][]byte
	order  []cid.Cid // first appearance of each block
	dups   int
}

// parseCAR reads a CARv1: header {roots, version: 1}, then blocks, each
// hash checked against its CID.
func parseCAR(b []byte) (*carFile, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, errors.New("car: bad header length")
	}
	var hdr struct {
		Roots   []cbor.Tag `cbor:"roots"`
		Version int        `cbor:"version"`
	}
	if err := cbor.Unmarshal(b[k:k+int(n)], &hdr); err != nil {
		return nil, fmt.Errorf("car: header: %w", err)
	}
	if hdr.Version != 1 {
		return nil, fmt.Errorf("car: version %d", hdr.Version)
	}
	f := &carFile{blocks: map[cid.Cid][]byte{}}
	for _, r := range hdr.Roots {
		c, err := tagCID(r)
		if err != nil {
			return nil, fmt.Errorf("car: root: %w", err)
		}
		f.roots = append(f.roots, c)
	}
	rest := b[k+int(n):]
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return nil, errors.New("car: bad block length")
		}
		sec := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		cl, c, err := cid.CidFromBytes(sec)
		if err != nil {
			return nil, fmt.Errorf("car: block CID: %w", err)
		}
		data := sec[cl:]
		sum, err := c.Prefix().Sum(data)
		if err != nil || !sum.Equals(c) {
			return nil, fmt.Errorf("car: block %s: its bytes hash to %s", c, sum)
		}
		if _, ok := f.blocks[c]; ok {
			f.dups++
			continue
		}
		f.blocks[c] = data
		f.order = append(f.order, c)
	}
	return f, nil
}

// tagCID decodes a DAG-CBOR link (tag 42, bytes 0x00 ++ CID).
func tagCID(tag cbor.Tag) (cid.Cid, error) {
	b, ok := tag.Content.([]byte)
	if tag.Number != 42 || !ok || len(b) < 2 || b[0] != 0 {
		return cid.Undef, fmt.Errorf("not a cid-link: tag %d %T", tag.Number, tag.Content)
	}
	return cid.Cast(b[1:])
}

// commitFields decodes the fields of a commit block the tests compare.
type commitFields struct {
	DID     string `cbor:"did"`
	Rev     string `cbor:"rev"`
	Version int    `cbor:"version"`
	Data    cid.Cid
}

func decodeCommit(b []byte) (*commitFields, error) {
	var raw struct {
		DID     string   `cbor:"did"`
		Rev     string   `cbor:"rev"`
		Version int      `cbor:"version"`
		Data    cbor.Tag `cbor:"data"`
	}
	if err := cbor.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	d, err := tagCID(raw.Data)
	if err != nil {
		return nil, fmt.Errorf("commit data: %w", err)
	}
	return &commitFields{DID: raw.DID, Rev: raw.Rev, Version: raw.Version, Data: d}, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// decodeJSON decodes with exact numbers (json.Number), for comparisons.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
