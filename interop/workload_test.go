package interop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// account is a hosted account the tests write to through reservoir's API,
// with what they wrote: the current records (the JSON sent) and every
// record operation with the commit it landed in.
type account struct {
	DID    string
	Handle string
	Token  string

	mu      sync.Mutex
	records map[string]json.RawMessage // path -> the JSON written
	cids    map[string]string          // path -> the CID the server answered
	ops     []recordOp                 // every create, update and delete, in order
	deleted []string                   // paths deleted and not written again
	commits []commitRef                // every commit of the account, in order
}

// recordOp is one record operation as a firehose consumer must see it.
type recordOp struct {
	Path   string
	Action string // create, update, delete
	CID    string // "" for delete
	Rev    string
	Commit string
}

type commitRef struct{ CID, Rev string }

type commitMeta struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

// createAccount creates a hosted account with a new did:plc (registered
// by the server in the directory) and records its first commit.
func (e *env) createAccount(t *testing.T, handle string) *account {
	t.Helper()
	var out struct {
		DID       string `json:"did"`
		Handle    string `json:"handle"`
		AccessJwt string `json:"accessJwt"`
	}
	e.procedure(t, "com.atproto.server.createAccount", "admin", map[string]string{"handle": handle}, &out)
	if out.DID == "" || out.AccessJwt == "" {
		t.Fatalf("createAccount %s: no did or token in the answer", handle)
	}
	a := &account{DID: out.DID, Handle: handle, Token: out.AccessJwt, records: map[string]json.RawMessage{}, cids: map[string]string{}}
	var head commitMeta
	e.getJSON(t, "com.atproto.sync.getLatestCommit", url.Values{"did": {a.DID}}, &head)
	a.commits = append(a.commits, commitRef(head))
	return a
}

func (a *account) note(path, action, cidStr string, commit commitMeta, record json.RawMessage) {
	a.ops = append(a.ops, recordOp{Path: path, Action: action, CID: cidStr, Rev: commit.Rev, Commit: commit.CID})
	switch action {
	case "delete":
		delete(a.records, path)
		delete(a.cids, path)
		a.deleted = append(a.deleted, path)
	default:
		a.records[path] = record
		a.cids[path] = cidStr
		a.deleted = removeString(a.deleted, path)
	}
}

func (a *account) noteCommit(c commitMeta) {
	if n := len(a.commits); n == 0 || a.commits[n-1].CID != c.CID {
		a.commits = append(a.commits, commitRef(c))
	}
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// pathFromURI is the collection/rkey of an at:// URI of this account.
func (a *account) pathFromURI(t *testing.T, uri string) string {
	t.Helper()
	p, ok := strings.CutPrefix(uri, "at://"+a.DID+"/")
	if !ok {
		t.Fatalf("uri %q is not of %s", uri, a.DID)
	}
	return p
}

// createRecord writes a record with createRecord (rkey "" lets the server
// pick a TID) and returns its path.
func (a *account) createRecord(t *testing.T, e *env, collection, rkey string, record map[string]any) string {
	t.Helper()
	raw := mustJSON(t, record)
	in := map[string]any{"repo": a.DID, "collection": collection, "record": raw}
	if rkey != "" {
		in["rkey"] = rkey
	}
	var out struct {
		URI    string     `json:"uri"`
		CID    string     `json:"cid"`
		Commit commitMeta `json:"commit"`
	}
	e.procedure(t, "com.atproto.repo.createRecord", a.Token, in, &out)
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pathFromURI(t, out.URI)
	a.note(p, "create", out.CID, out.Commit, raw)
	a.noteCommit(out.Commit)
	return p
}

// putRecord writes a record at a path with putRecord: an update if it
// exists, else a create.
func (a *account) putRecord(t *testing.T, e *env, collection, rkey string, record map[string]any) {
	t.Helper()
	raw := mustJSON(t, record)
	var out struct {
		URI    string     `json:"uri"`
		CID    string     `json:"cid"`
		Commit commitMeta `json:"commit"`
	}
	e.procedure(t, "com.atproto.repo.putRecord", a.Token, map[string]any{"repo": a.DID, "collection": collection, "rkey": rkey, "record": raw}, &out)
	a.mu.Lock()
	defer a.mu.Unlock()
	p := collection + "/" + rkey
	action := "create"
	if _, ok := a.records[p]; ok {
		action = "update"
	}
	a.note(p, action, out.CID, out.Commit, raw)
	a.noteCommit(out.Commit)
}

func (a *account) deleteRecord(t *testing.T, e *env, path string) {
	t.Helper()
	collection, rkey, _ := strings.Cut(path, "/")
	var out struct {
		Commit commitMeta `json:"commit"`
	}
	e.procedure(t, "com.atproto.repo.deleteRecord", a.Token, map[string]any{"repo": a.DID, "collection": collection, "rkey": rkey}, &out)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.note(path, "delete", "", out.Commit, nil)
	a.noteCommit(out.Commit)
}

// write is one operation of applyWrites.
type write struct {
	Action     string // create, update, delete
	Collection string
	RKey       string
	Record     map[string]any
}

func (a *account) applyWrites(t *testing.T, e *env, writes []write) {
	t.Helper()
	type inWrite struct {
		Type       string          `json:"$type"`
		Collection string          `json:"collection"`
		RKey       string          `json:"rkey,omitempty"`
		Value      json.RawMessage `json:"value,omitempty"`
	}
	in := make([]inWrite, len(writes))
	raws := make([]json.RawMessage, len(writes))
	for i, w := range writes {
		in[i] = inWrite{Type: "com.atproto.repo.applyWrites#" + w.Action, Collection: w.Collection, RKey: w.RKey}
		if w.Record != nil {
			raws[i] = mustJSON(t, w.Record)
			in[i].Value = raws[i]
		}
	}
	var out struct {
		Commit  commitMeta `json:"commit"`
		Results []struct {
			Type string `json:"$type"`
			URI  string `json:"uri"`
			CID  string `json:"cid"`
		} `json:"results"`
	}
	e.procedure(t, "com.atproto.repo.applyWrites", a.Token, map[string]any{"repo": a.DID, "writes": in}, &out)
	if len(out.Results) != len(writes) {
		t.Fatalf("applyWrites: %d results for %d writes", len(out.Results), len(writes))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, w := range writes {
		r := out.Results[i]
		if r.Type != "com.atproto.repo.applyWrites#"+w.Action+"Result" {
			t.Fatalf("applyWrites result %d is %q for a %s", i, r.Type, w.Action)
		}
		p := w.Collection + "/" + w.RKey
		if w.Action == "create" {
			p = a.pathFromURI(t, r.URI)
		}
		a.note(p, w.Action, r.CID, out.Commit, raws[i])
	}
	a.noteCommit(out.Commit)
}

// uploadBlob uploads bytes and returns the blob's JSON form.
func (a *account) uploadBlob(t *testing.T, e *env, data []byte, mime string) map[string]any {
	t.Helper()
	code, b := e.call(t, http.MethodPost, "com.atproto.repo.uploadBlob", nil, a.Token, mime, data)
	if code != http.StatusOK {
		t.Fatalf("uploadBlob: %d %s", code, b)
	}
	var out struct {
		Blob map[string]any `json:"blob"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Blob == nil {
		t.Fatalf("uploadBlob: %s (%v)", b, err)
	}
	return out.Blob
}

// current returns the records as the node harness takes them.
func (a *account) current() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	paths := make([]string, 0, len(a.records))
	for p := range a.records {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]map[string]any, len(paths))
	for i, p := range paths {
		coll, rkey, _ := strings.Cut(p, "/")
		out[i] = map[string]any{"collection": coll, "rkey": rkey, "record": a.records[p]}
	}
	return out
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- records ----

func post(i int) map[string]any {
	return map[string]any{
		"$type":     "app.bsky.feed.post",
		"text":      fmt.Sprintf("post %d: %s", i, strings.Repeat("words ", i%9)),
		"langs":     []any{"en"},
		"createdAt": fmt.Sprintf("2026-01-%02dT%02d:%02d:00.000Z", 1+i%28, i%24, i%60),
	}
}

func patterned(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*7)
	}
	return b
}

// dataModel is a record with every kind of value of the data model in its
// JSON form: $bytes (unpadded standard base64), $link, a blob, nested and
// empty containers, unicode, NUL, integers at the CBOR width edges and the
// safe-integer limits, booleans and null.
func dataModel(i int, link string, blob map[string]any) map[string]any {
	raw := base64.RawStdEncoding.EncodeToString
	return map[string]any{
		"$type":   "com.example.interop.datamodel",
		"text":    fmt.Sprintf("record %d", i),
		"empty":   "",
		"unicode": "héllo wörld — 日本語 — עברית — 👩‍👩‍👧‍👦 — é — ﷽ — \u0000 — \u2028",
		"long":    strings.Repeat("ö", 2000),
		"ints": []any{0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, int64(4294967295), int64(4294967296),
			int64(-4294967296), int64(-4294967297), int64(9007199254740991), int64(-9007199254740991)},
		"yes":        true,
		"no":         false,
		"nothing":    nil,
		"bytes":      map[string]any{"$bytes": raw(patterned(300, i))},
		"noBytes":    map[string]any{"$bytes": ""},
		"link":       map[string]any{"$link": link},
		"links":      []any{map[string]any{"$link": link}, map[string]any{"$link": blob["ref"].(map[string]any)["$link"]}},
		"nested":     map[string]any{"a": []any{[]any{}, []any{[]any{}}, []any{map[string]any{}}, map[string]any{"deep": map[string]any{"deeper": []any{1, []any{2, []any{3, map[string]any{"five": "v"}}}}}}}, "b": map[string]any{}},
		"emptyArray": []any{},
		"emptyMap":   map[string]any{},
		"a":          1, "bb": 2, "aa": 3, "b": 4, "z": 5,
		"ключ":      "unicode key",
		"🔑":         "emoji key",
		"blob":      blob,
		"createdAt": "2026-01-02T03:04:05.678Z",
	}
}

// mixedWorkload writes to a through every write procedure: a blob, a
// profile (put, then put again), posts (create, update, delete), a
// data-model record, applyWrites with creates, updates and deletes, and a
// path deleted then written again.
func mixedWorkload(t *testing.T, e *env, a *account, posts int) {
	t.Helper()
	avatar := a.uploadBlob(t, e, patterned(2048, 1), "image/png")
	a.putRecord(t, e, "app.bsky.actor.profile", "self", map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Ünïcödé " + a.Handle, "avatar": avatar})
	var paths []string
	for i := 0; i < posts; i++ {
		paths = append(paths, a.createRecord(t, e, "app.bsky.feed.post", "", post(i)))
	}
	first := a.cids[paths[0]]
	a.createRecord(t, e, "com.example.interop.datamodel", "dm1", dataModel(1, first, avatar))
	_, rkey3, _ := strings.Cut(paths[3%len(paths)], "/")
	a.putRecord(t, e, "app.bsky.feed.post", rkey3, post(1000))
	a.deleteRecord(t, e, paths[len(paths)-1])
	a.deleteRecord(t, e, paths[len(paths)/2])
	_, rkey1, _ := strings.Cut(paths[1], "/")
	_, rkey2, _ := strings.Cut(paths[2], "/")
	a.applyWrites(t, e, []write{
		{Action: "create", Collection: "app.bsky.feed.post", Record: post(2000)},
		{Action: "create", Collection: "app.bsky.feed.like", RKey: "3kaaaaaaaaa22", Record: map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": "at://" + a.DID + "/" + paths[0], "cid": first}, "createdAt": "2026-01-01T00:00:00Z"}},
		{Action: "create", Collection: "com.example.interop.datamodel", RKey: "dm2", Record: dataModel(2, first, avatar)},
		{Action: "update", Collection: "app.bsky.feed.post", RKey: rkey1, Record: post(2001)},
		{Action: "delete", Collection: "app.bsky.feed.post", RKey: rkey2},
	})
	a.putRecord(t, e, "app.bsky.actor.profile", "self", map[string]any{"$type": "app.bsky.actor.profile", "displayName": "renamed"})
	a.deleteRecord(t, e, "com.example.interop.datamodel/dm2")
	a.createRecord(t, e, "com.example.interop.datamodel", "dm2", dataModel(3, first, avatar))
}

// bulkWorkload writes n records with applyWrites (200 a call), then
// updates and deletes some of them in one more call.
func bulkWorkload(t *testing.T, e *env, a *account, n int) {
	t.Helper()
	colls := []string{"app.bsky.graph.follow", "app.bsky.feed.like", "com.example.interop.thing"}
	for start := 0; start < n; start += 200 {
		var ws []write
		for i := start; i < start+200 && i < n; i++ {
			c := colls[i%len(colls)]
			ws = append(ws, write{Action: "create", Collection: c, RKey: fmt.Sprintf("r%06d", i), Record: map[string]any{"$type": c, "n": i, "createdAt": "2026-02-03T04:05:06Z"}})
		}
		a.applyWrites(t, e, ws)
	}
	var ws []write
	for i := 0; i < n && len(ws) < 40; i += 23 {
		c := colls[i%len(colls)]
		if len(ws)%2 == 0 {
			ws = append(ws, write{Action: "update", Collection: c, RKey: fmt.Sprintf("r%06d", i), Record: map[string]any{"$type": c, "n": -i}})
		} else {
			ws = append(ws, write{Action: "delete", Collection: c, RKey: fmt.Sprintf("r%06d", i)})
		}
	}
	a.applyWrites(t, e, ws)
}
