package plc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
)

// The interop test runs interop/plc/plc-interop.js with the reference
// TypeScript library (@did-plc/lib 0.0.4) and directory (@did-plc/server
// 0.0.1), installed by scripts/interop-npm.sh from the committed
// package-lock.json. Without node and npm it fails: it is not optional.

type libCase struct {
	Name      string            `json:"name"`
	DID       string            `json:"did"`
	Ops       []json.RawMessage `json:"ops"`
	Nullified []int             `json:"nullified"`
	CIDs      []string          `json:"cids"`
}

type generated struct {
	Library map[string]string `json:"library"`
	Cases   []libCase         `json:"cases"`
	HighS   struct {
		DID            string          `json:"did"`
		Op             json.RawMessage `json:"op"`
		LibraryAccepts bool            `json:"libraryAccepts"`
	} `json:"highS"`
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("go.mod not found")
		}
		dir = filepath.Dir(dir)
	}
}

// setupNode checks for node and npm and installs the pinned packages.
func setupNode(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("interop: %s is not on PATH. This test needs Node 20+ and npm to run the reference did:plc implementation (interop/plc); install them, it is not skipped.", tool)
		}
	}
	root := moduleRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/interop-npm.sh", "interop/plc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("interop: scripts/interop-npm.sh interop/plc failed: %v\n%s", err, out)
	}
	return root
}

// runNode runs the harness in mode with stdin and decodes its JSON output.
func runNode(t *testing.T, root, mode string, stdin any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "interop/plc/plc-interop.js", mode)
	cmd.Dir = root
	if stdin != nil {
		b, err := json.Marshal(stdin)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("node plc-interop.js %s: %v\n%s", mode, err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("node plc-interop.js %s printed bad JSON: %v\n%s", mode, err, b)
	}
}

func TestInteropWithReferenceImplementation(t *testing.T) {
	root := setupNode(t)
	var gen generated
	runNode(t, root, "generate", nil, &gen)
	if gen.Library["@did-plc/lib"] != "0.0.4" || len(gen.Cases) != 4 {
		t.Fatalf("harness output: library %v, %d cases", gen.Library, len(gen.Cases))
	}
	t.Run("LibraryOpsInOurCode", func(t *testing.T) { libraryOpsInOurCode(t, gen) })
	ours := ourCases(t)
	t.Run("OurOpsInTheLibrary", func(t *testing.T) { ourOpsInTheLibrary(t, root, ours) })
	t.Run("ReferenceDirectoryAgrees", func(t *testing.T) { referenceDirectoryAgrees(t, root, gen, ours) })
}

func parseOps(t *testing.T, raw []json.RawMessage) []plc.Op {
	t.Helper()
	ops := make([]plc.Op, len(raw))
	for i, r := range raw {
		op, err := plc.ParseOp(r)
		if err != nil {
			t.Fatalf("operation %d does not parse: %v\n%s", i, err, r)
		}
		ops[i] = op
	}
	return ops
}

func newDirectory(t *testing.T) (*plc.Client, string) {
	t.Helper()
	srv, err := directory.New(directory.Options{Store: directory.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &plc.Client{BaseURL: ts.URL}, ts.URL
}

// libraryOpsInOurCode: our CIDs and DIDs equal the library's, and our
// directory accepts every operation it made (and nullifies the same ones).
func libraryOpsInOurCode(t *testing.T, gen generated) {
	client, _ := newDirectory(t)
	ctx := context.Background()
	for _, c := range gen.Cases {
		t.Run(c.Name, func(t *testing.T) {
			ops := parseOps(t, c.Ops)
			for i, op := range ops {
				if got := op.CID().String(); got != c.CIDs[i] {
					t.Errorf("operation %d: our CID %s, the library's %s", i, got, c.CIDs[i])
				}
			}
			did, err := plc.DIDFromGenesis(ops[0])
			if err != nil || did.String() != c.DID {
				t.Fatalf("our DID %s (%v), the library's %s", did, err, c.DID)
			}
			if c.Name == "legacy" {
				// The reference directory no longer accepts legacy creates,
				// and neither do we; the log still verifies.
				err := client.Submit(ctx, did, ops[0])
				if !errors.Is(err, plc.ErrRejected) {
					t.Errorf("legacy create POSTed: %v, want rejected", err)
				}
				log := []plc.LogEntry{entry(did, ops[0], t0), entry(did, ops[1], t0.Add(time.Second))}
				if _, err := plc.VerifyAuditLog(did, log); err != nil {
					t.Errorf("the library's legacy log does not verify: %v", err)
				}
				return
			}
			for i, op := range ops {
				if err := client.Submit(ctx, did, op); err != nil {
					t.Fatalf("our directory refused the library's operation %d: %v", i, err)
				}
			}
			audit, err := client.AuditLog(ctx, did)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range audit {
				want := contains(c.Nullified, i)
				if e.Nullified != want {
					t.Errorf("entry %d nullified=%t, want %t", i, e.Nullified, want)
				}
			}
			if _, err := plc.VerifyAuditLog(did, audit); err != nil {
				t.Errorf("audit log does not verify: %v", err)
			}
		})
	}
	t.Run("HighS", func(t *testing.T) {
		op, err := plc.ParseOp(gen.HighS.Op)
		if err != nil {
			t.Fatal(err)
		}
		did := syntax.DID(gen.HighS.DID)
		err = client.Submit(ctx, did, op)
		var de *plc.DirectoryError
		if !errors.As(err, &de) || de.Status != 400 || !strings.Contains(de.Message, "invalid signature") {
			t.Errorf("high-S P-256 genesis: %v, want 400 invalid signature", err)
		}
		t.Logf("@did-plc/lib 0.0.4 accepts the high-S signature: %t (the spec requires refusing it)", gen.HighS.LibraryAccepts)
	})
}

func contains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// ourCase is a log we build, with what the library must decide about it:
// accepted for each operation, nullified for each accepted one.
type ourCase struct {
	Name      string   `json:"name"`
	DID       string   `json:"did"`
	Ops       []plc.Op `json:"ops"`
	accepted  []bool
	nullified []bool
}

func ourCases(t *testing.T) []ourCase {
	var cases []ourCase
	add := func(name string, did syntax.DID, accepted, nullified []bool, ops ...plc.Op) {
		cases = append(cases, ourCase{Name: name, DID: did.String(), Ops: ops, accepted: accepted, nullified: nullified})
	}
	all := func(n int, v bool) []bool {
		out := make([]bool, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, curve := range []string{"k256", "p256"} {
		k, other := newK256(t), newP256(t)
		if curve == "p256" {
			k, other = other, k
		}
		g, did := genesis(t, k, k, other)
		u1 := update(t, g, k, plc.SetHandle(syntax.Handle("ours-"+curve+".test")))
		u2 := update(t, u1, other, plc.SetEndpoint("https://pds2.example.com"))
		u3 := update(t, u2, k, plc.SetSigningKey(newP256(t).pub))
		next := newK256(t)
		u4 := update(t, u3, other, plc.SetRotationKeys(next.pub, k.pub))
		ts := sign(t, plc.NewTombstone(u4), next)
		add("ours-"+curve, did, all(6, true), all(6, false), g, u1, u2, u3, u4, ts)
	}
	{
		recovery, rotation := newP256(t), newK256(t)
		g, did := genesis(t, rotation, recovery, rotation)
		hijack := update(t, g, rotation, plc.SetHandle("hijacked.test"))
		fix := update(t, g, recovery, plc.SetRotationKeys(recovery.pub))
		add("ours-recovery", did, all(3, true), []bool{false, true, false}, g, hijack, fix)
	}
	{
		k := newK256(t)
		g, did := genesis(t, k, k)
		bad := update(t, g, newK256(t), plc.SetHandle("mallory.test"))
		add("ours-stranger-signs", did, []bool{true, false}, []bool{false}, g, bad)
	}
	{
		high, low := newK256(t), newP256(t)
		g, did := genesis(t, low, high, low)
		u := update(t, g, high, plc.SetHandle("by-high.test"))
		fork := update(t, g, low, plc.SetHandle("by-low.test"))
		add("ours-lower-key-fork", did, []bool{true, true, false}, all(2, false), g, u, fork)
	}
	{
		k := newK256(t)
		g, _ := genesis(t, k, k)
		_, otherDID := genesis(t, k, k, newP256(t))
		add("ours-wrong-did", otherDID, []bool{false}, []bool{}, g)
	}
	{
		k := newK256(t)
		g, did := genesis(t, k, k)
		ts := sign(t, plc.NewTombstone(g), k)
		after := sign(t, &plc.Tombstone{Prev: ts.CID().String()}, k)
		add("ours-after-tombstone", did, []bool{true, true, false}, all(2, false), g, ts, after)
	}
	return cases
}

type libVerdict struct {
	Name      string   `json:"name"`
	DID       string   `json:"did"`
	CIDs      []string `json:"cids"`
	Accepted  []bool   `json:"accepted"`
	Errors    []string `json:"errors"`
	Nullified []bool   `json:"nullified"`
	LogValid  bool     `json:"logValid"`
	LogError  string   `json:"logError"`
}

// ourOpsInTheLibrary: the library computes our DIDs and CIDs, accepts our
// valid operations (and nullifies what we nullify), and refuses our
// invalid ones.
func ourOpsInTheLibrary(t *testing.T, root string, cases []ourCase) {
	var out struct {
		Results []libVerdict `json:"results"`
	}
	runNode(t, root, "verify", map[string]any{"cases": cases}, &out)
	if len(out.Results) != len(cases) {
		t.Fatalf("%d verdicts for %d cases", len(out.Results), len(cases))
	}
	for i, c := range cases {
		r := out.Results[i]
		t.Run(c.Name, func(t *testing.T) {
			ourDID, err := plc.DIDFromGenesis(c.Ops[0])
			if err != nil {
				t.Fatal(err)
			}
			if r.DID != ourDID.String() {
				t.Errorf("library DID %s, ours %s", r.DID, ourDID)
			}
			for j, op := range c.Ops {
				if r.CIDs[j] != op.CID().String() {
					t.Errorf("operation %d: library CID %s, ours %s", j, r.CIDs[j], op.CID())
				}
			}
			if !reflect.DeepEqual(r.Accepted, c.accepted) {
				t.Errorf("library accepted %v, want %v; errors %q", r.Accepted, c.accepted, r.Errors)
			}
			if len(c.nullified) > 0 && !reflect.DeepEqual(r.Nullified, c.nullified) {
				t.Errorf("library nullified %v, want %v", r.Nullified, c.nullified)
			}
			if c.accepted[0] && !r.LogValid {
				t.Errorf("library refuses the accepted log: %s", r.LogError)
			}
		})
	}
}

// referenceDirectory runs the reference directory until the test ends.
func referenceDirectory(t *testing.T, root string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "interop/plc/plc-interop.js", "serve")
	cmd.Dir = root
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		var hello struct{ Port int }
		if !ok || json.Unmarshal([]byte(line), &hello) != nil || hello.Port == 0 {
			t.Fatalf("reference directory did not start: %q\n%s", line, stderr.String())
		}
		return fmt.Sprintf("http://127.0.0.1:%d", hello.Port)
	case <-time.After(30 * time.Second):
		t.Fatalf("reference directory did not start\n%s", stderr.String())
	}
	return ""
}

type answer struct {
	status int
	body   any
}

func call(t *testing.T, method, url string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if json.Unmarshal(b, &v) != nil {
		v = string(b)
	}
	return answer{resp.StatusCode, v}
}

// referenceDirectoryAgrees submits the same operations to the reference
// directory and ours: both must accept and refuse the same ones, and then
// serve the same data, logs and audit logs (createdAt aside).
func referenceDirectoryAgrees(t *testing.T, root string, gen generated, ours []ourCase) {
	ref := referenceDirectory(t, root)
	_, mine := newDirectory(t)
	type scenario struct {
		name string
		did  string
		ops  []plc.Op
	}
	var scenarios []scenario
	for _, c := range gen.Cases {
		if c.Name != "legacy" {
			scenarios = append(scenarios, scenario{"library-" + c.Name, c.DID, parseOps(t, c.Ops)})
		}
	}
	for _, c := range ours {
		scenarios = append(scenarios, scenario{c.Name, c.DID, c.Ops})
	}
	{
		k := newK256(t)
		g, did := genesis(t, k, k)
		scenarios = append(scenarios,
			scenario{"genesis twice", did.String(), []plc.Op{g, g}},
			scenario{"tombstone first", did.String() + "x", []plc.Op{sign(t, plc.NewTombstone(g), k)}},
		)
		six := update(t, g, k, func(o *plc.Operation) {
			for range 5 {
				o.RotationKeys = append(o.RotationKeys, newP256(t).did())
			}
		})
		k2 := newK256(t)
		g2, did2 := genesis(t, k2, k2)
		scenarios = append(scenarios, scenario{"six rotation keys", did2.String(), []plc.Op{g2, update(t, g2, k2, func(o *plc.Operation) { o.RotationKeys = six.RotationKeys })}})
		stranger, _ := genesis(t, k, k, newP256(t))
		scenarios = append(scenarios, scenario{"unknown prev", did2.String(), []plc.Op{update(t, stranger, k2)}})
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			for i, op := range s.ops {
				body, _ := op.MarshalJSON()
				a := call(t, http.MethodPost, ref+"/"+s.did, body)
				b := call(t, http.MethodPost, mine+"/"+s.did, body)
				if a.status != b.status {
					t.Errorf("operation %d: reference answered %d %v, we answered %d %v", i, a.status, a.body, b.status, b.body)
				} else {
					t.Logf("operation %d: both answered %d", i, a.status)
				}
			}
			for _, path := range []string{"/data", "/log", "/log/last", "/log/audit"} {
				a := call(t, http.MethodGet, ref+"/"+s.did+path, nil)
				b := call(t, http.MethodGet, mine+"/"+s.did+path, nil)
				if path == "/log/audit" {
					a.body, b.body = dropCreatedAt(a.body), dropCreatedAt(b.body)
				}
				if a.status != b.status || (a.status == 200 && !reflect.DeepEqual(a.body, b.body)) {
					t.Errorf("GET %s: reference %d %v\nours %d %v", path, a.status, a.body, b.status, b.body)
				}
				if a.status == 404 && a.body.(map[string]any)["message"] != b.body.(map[string]any)["message"] {
					t.Errorf("GET %s: reference says %v, we say %v", path, a.body, b.body)
				}
			}
		})
	}
}

func dropCreatedAt(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			delete(m, "createdAt")
		}
	}
	return list
}
