package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// TestExportVerifyInspect exports a repository in both formats, with and
// without --since, and checks the files with verify and inspect; then
// breaks copies of the CAR and checks that verify says what broke.
func TestExportVerifyInspect(t *testing.T) {
	r := startReservoir(t)
	alice := r.createAccount("alice.test")
	posts := map[string]string{} // rkey → text
	var firstRev string
	for i := range 5 {
		rkey := fmt.Sprintf("3l%011d", i)
		posts[rkey] = fmt.Sprintf("post number %d", i)
		rev := r.putRecord(alice, "app.bsky.feed.post", rkey, textPost(posts[rkey]))
		if i == 0 {
			firstRev = rev
		}
	}
	for i := range 2 {
		r.putRecord(alice, "app.bsky.feed.like", fmt.Sprintf("3m%011d", i), map[string]any{"$type": "app.bsky.feed.like", "createdAt": "2026-11-26T00:00:00.000Z"})
	}
	commitCID, rev := r.latestCommit(alice.did)
	dir := t.TempDir()
	file := filepath.Join(dir, "alice.car")

	res := runCLI(t, runExport, "--host", r.url, "--plc-url", r.plc, alice.did, "-o", file)
	if res.code != 0 {
		t.Fatalf("export: %v\n%s", res.err, res.stderr)
	}
	if !strings.Contains(res.stderr, "7 records in 2 collections") || !strings.Contains(res.stderr, "verified with "+r.signingKey(alice.did)) {
		t.Errorf("export report:\n%s", res.stderr)
	}
	// Without --host: the DID document names the server.
	file2 := filepath.Join(dir, "alice2.car")
	if res := runCLI(t, runExport, "--plc-url", r.plc, "--allow-insecure-hosts", "-o", file2, alice.did); res.code != 0 {
		t.Fatalf("export without --host: %v\n%s", res.err, res.stderr)
	}
	a, _ := os.ReadFile(file)
	b, _ := os.ReadFile(file2)
	if !bytes.Equal(a, b) {
		t.Errorf("the two exports differ")
	}

	res = runCLI(t, runVerify, "--plc-url", r.plc, file)
	if res.code != 0 || !strings.Contains(res.stdout, "ok: "+file+": "+alice.did+" rev "+rev+", commit "+commitCID) ||
		!strings.Contains(res.stdout, "7 records present and valid") {
		t.Fatalf("verify: exit %d %v\n%s", res.code, res.err, res.stdout)
	}
	if res := runCLI(t, runVerify, "--key", r.signingKey(alice.did), "--did", alice.did, file); res.code != 0 {
		t.Errorf("verify --key: %v", res.err)
	}

	res = runCLI(t, runInspect, "--json", file)
	var ins inspectJSON
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &ins) != nil {
		t.Fatalf("inspect --json: %v\n%s", res.err, res.stdout)
	}
	if ins.DID != alice.did || ins.Rev != rev || ins.Commit != commitCID || ins.Records != 7 || ins.Bytes != int64(len(a)) ||
		len(ins.Collections) != 2 || ins.Collections[0].Collection != "app.bsky.feed.like" || ins.Collections[0].Records != 2 || ins.Collections[1].Records != 5 {
		t.Errorf("inspect --json: %+v", ins)
	}
	_, blocks, err := car.ParseBytes(a, nil)
	if err != nil || ins.Blocks != len(blocks) {
		t.Errorf("inspect counts %d blocks, the CAR has %d (%v)", ins.Blocks, len(blocks), err)
	}
	res = runCLI(t, runInspect, file)
	for _, want := range []string{"did:       " + alice.did, "rev:       " + rev, "records:   7", "5  ", "app.bsky.feed.post"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, res.stdout)
		}
	}

	// --format dir: one JSON file per record, the records as written.
	out := filepath.Join(dir, "alice")
	if res := runCLI(t, runExport, "--host", r.url, "--plc-url", r.plc, "--format", "dir", "-o", out, alice.did); res.code != 0 {
		t.Fatalf("export --format dir: %v\n%s", res.err, res.stderr)
	}
	for rkey, text := range posts {
		data, err := os.ReadFile(filepath.Join(out, "app.bsky.feed.post", rkey+".json"))
		var rec map[string]any
		if err != nil || json.Unmarshal(data, &rec) != nil || rec["text"] != text || rec["$type"] != "app.bsky.feed.post" {
			t.Errorf("%s: %s %v", rkey, data, err)
		}
	}
	likes, _ := os.ReadDir(filepath.Join(out, "app.bsky.feed.like"))
	entries, _ := os.ReadDir(out)
	if len(likes) != 2 || len(entries) != 2 {
		t.Errorf("%d like files, %d entries in %s (temporary CAR left?)", len(likes), len(entries), out)
	}
	if res := runCLI(t, runExport, "--host", r.url, "--plc-url", r.plc, "--format", "dir", "-o", out, alice.did); res.code != 1 || !strings.Contains(res.err.Error(), "not empty") {
		t.Errorf("export into a non-empty directory: %d %v", res.code, res.err)
	}

	// --since: a diff, verified as one.
	diff := filepath.Join(dir, "diff.car")
	if res := runCLI(t, runExport, "--host", r.url, "--plc-url", r.plc, "--since", firstRev, "-o", diff, alice.did); res.code != 0 || !strings.Contains(res.stderr, "diff:") {
		t.Fatalf("export --since: %v\n%s", res.err, res.stderr)
	}
	if res := runCLI(t, runVerify, "--plc-url", r.plc, "--partial", diff); res.code != 0 || !strings.Contains(res.stdout, "partial CAR") {
		t.Errorf("verify --partial of the diff: %v\n%s", res.err, res.stdout)
	}
	if res := runCLI(t, runVerify, "--plc-url", r.plc, diff); res.code != 1 || !strings.Contains(res.err.Error(), "block missing") {
		t.Errorf("verify of the diff as a whole repository: %d %v", res.code, res.err)
	}
	if res := runCLI(t, runInspect, diff); res.code != 0 || !strings.Contains(res.stdout, "partial:") {
		t.Errorf("inspect of the diff: %v\n%s", res.err, res.stdout)
	}

	// A wrong key: nothing written, exit 1.
	other, _ := atcrypto.GeneratePrivateKeyK256()
	otherPub, _ := other.PublicKey()
	bad := filepath.Join(dir, "bad.car")
	res = runCLI(t, runExport, "--host", r.url, "--key", otherPub.DIDKey(), "-o", bad, alice.did)
	if res.code != 1 || !strings.Contains(res.err.Error(), "verification FAILED") || !strings.Contains(res.err.Error(), "signature invalid") {
		t.Errorf("export with a wrong key: %d %v", res.code, res.err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a file was written after a failed verification: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".reservoir-export-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if res := runCLI(t, runVerify, "--key", otherPub.DIDKey(), file); res.code != 1 || !strings.Contains(res.err.Error(), "signature invalid") {
		t.Errorf("verify with a wrong key: %d %v", res.code, res.err)
	}
	verifyCorruptions(t, a, dir, r.signingKey(alice.did))

	// Errors of the host, named.
	r.takedown(alice.did)
	res = runCLI(t, runExport, "--host", r.url, "--plc-url", r.plc, "-o", filepath.Join(dir, "gone.car"), alice.did)
	if res.code != 1 || !strings.Contains(res.err.Error(), "RepoTakendown") {
		t.Errorf("export of a taken-down repository: %d %v", res.code, res.err)
	}
}

// verifyCorruptions breaks copies of a good CAR and checks verify's
// verdicts.
func verifyCorruptions(t *testing.T, good []byte, dir, key string) {
	roots, blocks, err := car.ParseBytes(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Find a record block: one that decodes as a record with a text.
	var record cid.Cid
	for c, data := range blocks {
		if rec, err := dagcbor.UnmarshalRecord(data); err == nil && rec["text"] != nil {
			record = c
			break
		}
	}
	if !record.Defined() {
		t.Fatal("no record block found")
	}
	rewrite := func(skip cid.Cid, flip bool) []byte {
		var buf bytes.Buffer
		w, _ := car.NewWriter(&buf, roots)
		var keys []cid.Cid
		for c := range blocks {
			keys = append(keys, c)
		}
		slices.SortFunc(keys, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
		for _, c := range keys {
			if c == skip {
				continue
			}
			data := blocks[c]
			if flip && c == record {
				data = bytes.Clone(data)
				data[len(data)/2] ^= 0x04
			}
			w.WriteBlock(c, data)
		}
		w.Flush()
		return buf.Bytes()
	}
	cases := map[string]struct {
		data []byte
		want []string
	}{
		"flipped.car": {rewrite(cid.Undef, true), []string{"FAILED", "block hash does not match its CID"}},
		"missing.car": {rewrite(record, false), []string{"FAILED", "block missing", record.String()}},
		"short.car":   {good[:len(good)-7], []string{"FAILED", "truncated"}},
		"empty.car":   {nil, []string{"FAILED"}},
	}
	for name, tc := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		res := runCLI(t, runVerify, "--key", key, path)
		if res.code != 1 {
			t.Errorf("%s: exit %d, want 1", name, res.code)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(res.err.Error(), w) {
				t.Errorf("%s: %q does not say %q", name, res.err, w)
			}
		}
	}
}
