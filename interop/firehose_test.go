package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fhLine is one line of the harness's firehose mode: an event the
// reference's Firehose handed over, an error it reported, or a marker.
type fhLine struct {
	Event          string `json:"event"`
	Seq            int64  `json:"seq"`
	DID            string `json:"did"`
	Time           string `json:"time"`
	Collection     string `json:"collection"`
	RKey           string `json:"rkey"`
	Rev            string `json:"rev"`
	Commit         string `json:"commit"`
	CID            string `json:"cid"`
	Active         *bool  `json:"active"`
	Status         string `json:"status"`
	HasDidDocument bool   `json:"hasDidDocument"`

	Error   string `json:"error"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Type    string `json:"type"`

	Started bool `json:"started"`
	Done    bool `json:"done"`
}

func (l fhLine) path() string { return l.Collection + "/" + l.RKey }

// consumer is the reference's Firehose running in node against our server.
// It is the child's stdout: each line is decoded as it arrives.
type consumer struct {
	name    string
	proc    *child
	stdin   io.WriteCloser
	started chan struct{}

	mu      sync.Mutex
	partial []byte
	events  []fhLine
	errs    []fhLine
	bad     []string // lines that are not JSON
	done    bool
}

// startConsumer runs the reference's Firehose on e's subscribeRepos: live
// (cursor nil), or from a cursor (through a MemoryRunner, as @atproto/sync
// 0.1.40's getCursor option is broken).
func startConsumer(t *testing.T, e *env, name string, cursor *int64) *consumer {
	t.Helper()
	c := &consumer{name: name, started: make(chan struct{})}
	cmd := exec.Command("node", harnessScript, "firehose")
	cmd.Dir = root(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	cmd.Stdout = c
	c.proc = startChild(t, "firehose consumer "+name, cmd)
	in := map[string]any{"service": e.wsURL(), "plcUrl": e.plc}
	if cursor != nil {
		in["cursor"] = *cursor
	}
	b, _ := json.Marshal(in)
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("firehose consumer %s: %v", name, err)
	}
	select {
	case <-c.started:
	case <-c.proc.exited:
		t.Fatalf("firehose consumer %s exited: %v\n%s", name, c.proc.err, c.proc.output.String())
	case <-time.After(startTimeout):
		t.Fatalf("firehose consumer %s did not start:\n%s", name, c.proc.output.String())
	}
	return c
}

// Write takes the child's stdout.
func (c *consumer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.line(c.partial[:i])
		c.partial = c.partial[i+1:]
	}
}

func (c *consumer) line(b []byte) {
	var l fhLine
	if err := json.Unmarshal(b, &l); err != nil {
		c.bad = append(c.bad, string(b))
		return
	}
	switch {
	case l.Started:
		close(c.started)
	case l.Done:
		c.done = true
	case l.Error != "":
		c.errs = append(c.errs, l)
	default:
		c.events = append(c.events, l)
	}
}

// stop closes the consumer's stdin (it destroys the Firehose and prints
// done) and waits for it to exit.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.proc.exited:
	case <-time.After(stopGrace):
		t.Errorf("firehose consumer %s did not stop within %s", c.name, stopGrace)
	}
	c.proc.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		t.Errorf("firehose consumer %s ended without finishing (%v):\n%s", c.name, c.proc.err, tail(c.proc.output.String(), 4000))
	}
}

func (c *consumer) snapshot() ([]fhLine, []fhLine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fhLine(nil), c.events...), append([]fhLine(nil), c.errs...)
}

// opKey names a record operation: account, commit rev, action, path.
func opKey(did, rev, action, path string) string {
	return did + " " + rev + " " + action + " " + path
}

// missingOps lists the expected operations the consumer has not seen.
func (c *consumer) missingOps(want map[string]recordOp) []string {
	events, _ := c.snapshot()
	seen := map[string]bool{}
	for _, l := range events {
		seen[opKey(l.DID, l.Rev, l.Event, l.path())] = true
	}
	var missing []string
	for k := range want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	return missing
}

// waitFor waits until the consumer has seen every operation of want, or
// has seen nothing new for quietLimit (it is stuck or dropped them), or
// 90 s have passed.
func (c *consumer) waitFor(want map[string]recordOp) {
	const quietLimit = 20 * time.Second
	deadline := time.Now().Add(90 * time.Second)
	lastCount, lastChange := -1, time.Now()
	for time.Now().Before(deadline) && time.Since(lastChange) < quietLimit {
		if len(c.missingOps(want)) == 0 {
			return
		}
		c.mu.Lock()
		n := len(c.events) + len(c.errs)
		c.mu.Unlock()
		if n != lastCount {
			lastCount, lastChange = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminPost calls an /admin/ route of the contract.
func (e *env) adminPost(t *testing.T, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, nil)
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

// TestOurFirehoseConsumedByReference is check 3: @atproto/sync's Firehose,
// validating every commit against the key `reservoir plc` gives, reads our
// subscribeRepos live and from cursor 0 while accounts write.
func TestOurFirehoseConsumedByReference(t *testing.T) {
	needNode(t)
	e := newEnv(t)
	live := startConsumer(t, e, "live", nil)
	e.waitSubscribers(t, 1)

	// Phase 1: four accounts created and written to at the same time.
	accounts := make([]*account, 5)
	t.Run("phase1", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				a := e.createAccount(t, fmt.Sprintf("writer%d.test", i))
				accounts[i] = a
				mixedWorkload(t, e, a, 6)
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// A second consumer replays from cursor 0 and goes on live while
	// phase 2 writes: bulk writes, a fifth account, a takedown and its
	// reversal, deletes.
	zero := int64(0)
	replay := startConsumer(t, e, "replay", &zero)
	e.waitSubscribers(t, 2)
	taken := accounts[1]
	t.Run("phase2", func(t *testing.T) {
		t.Run("bulk", func(t *testing.T) { t.Parallel(); bulkWorkload(t, e, accounts[0], 400) })
		t.Run("new", func(t *testing.T) {
			t.Parallel()
			a := e.createAccount(t, "writer4.test")
			accounts[4] = a
			mixedWorkload(t, e, a, 6)
		})
		t.Run("takedown", func(t *testing.T) {
			t.Parallel()
			e.adminPost(t, "/admin/accounts/"+taken.DID+"/takedown")
			e.adminPost(t, "/admin/accounts/"+taken.DID+"/reactivate")
			taken.createRecord(t, e, "app.bsky.feed.post", "", post(77))
		})
		t.Run("deletes", func(t *testing.T) {
			t.Parallel()
			a := accounts[2]
			for _, p := range sortedKeys(a.cids)[:4] {
				a.deleteRecord(t, e, p)
			}
		})
	})
	if t.Failed() {
		t.FailNow()
	}

	want := map[string]recordOp{}
	for _, a := range accounts {
		for _, op := range a.ops {
			want[opKey(a.DID, op.Rev, op.Action, op.Path)] = op
		}
	}
	for _, c := range []*consumer{live, replay} {
		c.waitFor(want)
	}
	time.Sleep(500 * time.Millisecond) // anything beyond the expected
	live.stop(t)
	replay.stop(t)

	for _, c := range []*consumer{live, replay} {
		t.Run(c.name, func(t *testing.T) { checkConsumer(t, c, accounts, want, taken) })
	}
	// Both saw the same events.
	le, _ := live.snapshot()
	re, _ := replay.snapshot()
	if a, b := eventSet(le), eventSet(re); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("the live consumer and the one from cursor 0 saw different events: only live %v; only replay %v", head(minus(a, b)), head(minus(b, a)))
	}
	t.Logf("%d record operations in %d commits of %d accounts; the reference saw %d events live and %d from cursor 0",
		len(want), countCommits(accounts), len(accounts), len(le), len(re))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func countCommits(accounts []*account) int {
	n := 0
	for _, a := range accounts {
		n += len(a.commits)
	}
	return n
}

func eventSet(events []fhLine) []string {
	var out []string
	for _, l := range events {
		out = append(out, fmt.Sprintf("%d %s %s %s %s", l.Seq, l.Event, l.DID, l.path(), l.CID))
	}
	sort.Strings(out)
	return out
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// checkConsumer compares what one consumer saw with what was written.
func checkConsumer(t *testing.T, c *consumer, accounts []*account, want map[string]recordOp, taken *account) {
	events, errs := c.snapshot()
	for i, l := range errs {
		if i == 20 {
			t.Errorf("... and %d more errors", len(errs)-i)
			break
		}
		t.Errorf("the reference reported %s on seq %d (%s, %s): %s; cause: %s", l.Error, l.Seq, l.Type, l.DID, l.Message, firstLine(l.Cause))
	}
	for _, b := range c.bad {
		t.Errorf("the harness printed a line that is not JSON: %q", b)
	}

	// Every write seen once, with its CID and commit; nothing else.
	seen := map[string]int{}
	for _, l := range events {
		switch l.Event {
		case "create", "update", "delete":
			k := opKey(l.DID, l.Rev, l.Event, l.path())
			seen[k]++
			w, ok := want[k]
			switch {
			case !ok:
				t.Errorf("seq %d: the reference saw %s of %s/%s at rev %s, which no write made", l.Seq, l.Event, l.DID, l.path(), l.Rev)
			case l.CID != w.CID || l.Commit != w.Commit:
				t.Errorf("seq %d: %s of %s/%s: the reference saw cid %q commit %s, the write answered cid %q commit %s", l.Seq, l.Event, l.DID, l.path(), l.CID, l.Commit, w.CID, w.Commit)
			}
		}
	}
	var never, twice []string
	for _, k := range sortedKeys(want) {
		switch n := seen[k]; {
		case n == 0:
			never = append(never, k)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s (%d times)", k, n))
		}
	}
	if len(never) > 0 {
		t.Errorf("the reference never handed over %d of %d operations (one whose proof fails verifyProofs is dropped silently): %v", len(never), len(want), head(never))
	}
	if len(twice) > 0 {
		t.Errorf("the reference handed over %d operations more than once: %v", len(twice), head(twice))
	}

	// Seqs in order: the live consumer handles events one at a time, so
	// its seqs rise; the one with a runner handles accounts concurrently,
	// so only each account's seqs rise. The ops of one commit share a seq.
	perDID := c.name != "live"
	last := map[string]fhLine{}
	for _, l := range events {
		k := ""
		if perDID {
			k = l.DID
		}
		if p, ok := last[k]; ok {
			sameCommit := p.Seq == l.Seq && p.Commit != "" && p.Commit == l.Commit
			if l.Seq < p.Seq || (l.Seq == p.Seq && !sameCommit) {
				t.Errorf("seq %d (%s %s) came after seq %d (%s %s)", l.Seq, l.Event, l.DID, p.Seq, p.Event, p.DID)
			}
		}
		last[k] = l
	}

	// Every account: #identity (its DID document resolved through the
	// directory), #account active, #sync of its first commit; the taken
	// down account: takendown, then active again, then #identity and #sync.
	for _, a := range accounts {
		var acct []string
		var identities, syncs int
		var firstSync *fhLine
		for _, l := range events {
			if l.DID != a.DID {
				continue
			}
			switch l.Event {
			case "identity":
				identities++
				if !l.HasDidDocument {
					t.Errorf("seq %d: #identity of %s: the reference could not resolve the DID through the directory", l.Seq, a.DID)
				}
			case "account":
				acct = append(acct, fmt.Sprintf("active=%t status=%q", *l.Active, l.Status))
			case "sync":
				syncs++
				if firstSync == nil {
					l := l
					firstSync = &l
				}
			}
		}
		wantAcct := []string{`active=true status=""`}
		wantIdentities, wantSyncs := 1, 1
		if a == taken {
			wantAcct = append(wantAcct, `active=false status="takendown"`, `active=true status=""`)
			wantIdentities, wantSyncs = 2, 2
		}
		if strings.Join(acct, "; ") != strings.Join(wantAcct, "; ") {
			t.Errorf("%s: #account events %v, want %v", a.Handle, acct, wantAcct)
		}
		if identities != wantIdentities || syncs != wantSyncs {
			t.Errorf("%s: %d #identity and %d #sync events, want %d and %d", a.Handle, identities, syncs, wantIdentities, wantSyncs)
		}
		if firstSync != nil && (firstSync.CID != a.commits[0].CID || firstSync.Rev != a.commits[0].Rev) {
			t.Errorf("%s: the first #sync is of commit %s rev %s, the account's first commit is %s rev %s", a.Handle, firstSync.CID, firstSync.Rev, a.commits[0].CID, a.commits[0].Rev)
		}
	}
}
