package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func TestBlobsSubcommand(t *testing.T) {
	r := startReservoir(t)
	alice := r.createAccount("alice.test")
	blobs := map[string][]byte{} // CID → bytes
	for i := range 4 {
		data := bytes.Repeat([]byte(fmt.Sprintf("blob %d ", i)), 2000+i*100)
		ref := r.uploadBlob(alice, data, "application/octet-stream")
		c := ref["ref"].(map[string]any)["$link"].(string)
		if want := dagcbor.SumRaw(data).String(); c != want {
			t.Fatalf("uploadBlob gave %s, want %s", c, want)
		}
		blobs[c] = data
		rec := textPost(fmt.Sprintf("with blob %d", i))
		rec["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": ref}}}
		r.putRecord(alice, "app.bsky.feed.post", fmt.Sprintf("3l%011d", i), rec)
	}
	dir := t.TempDir()
	checkDir := func(t *testing.T) {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(blobs) {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s holds %v, want the %d blobs only", dir, names, len(blobs))
		}
		for c, data := range blobs {
			got, err := os.ReadFile(filepath.Join(dir, c))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: %d bytes, %v", c, len(got), err)
			}
		}
	}
	counts := regexp.MustCompile(`(\d+) listed: (\d+) downloaded \(.*\), (\d+) already present, (\d+) failed`)
	summary := func(t *testing.T, stderr string) (listed, downloaded, present, failed int) {
		t.Helper()
		m := counts.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no summary in:\n%s", stderr)
		}
		n := make([]int, 4)
		for i := range n {
			n[i], _ = strconv.Atoi(m[i+1])
		}
		return n[0], n[1], n[2], n[3]
	}

	// Interrupted after the first blob: the second run keeps what the
	// first downloaded and fetches the rest.
	ctx, cancel := context.WithCancel(context.Background())
	errb := &watchedBuffer{onWrite: func(s string) {
		if strings.HasPrefix(s, "downloaded ") {
			cancel()
		}
	}}
	err := runBlobs(ctx, &cliIO{stdout: &syncBuffer{}, stderr: errb, getenv: func(string) string { return "" }},
		[]string{"--host", r.url, "-o", dir, "--parallel", "1", "-v", alice.did})
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "interrupted") {
		t.Fatalf("interrupted run: %v\n%s", err, errb)
	}
	_, first, _, _ := summary(t, errb.String())
	if first < 1 || first >= len(blobs) {
		t.Fatalf("the interrupted run downloaded %d blobs", first)
	}
	if partial, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(partial) > 0 {
		t.Errorf("partial files left: %v", partial)
	}
	res := runCLI(t, runBlobs, "--host", r.url, "-o", dir, alice.did)
	listed, downloaded, present, failed := summary(t, res.stderr)
	if res.code != 0 || listed != len(blobs) || present != first || downloaded != len(blobs)-first || failed != 0 {
		t.Fatalf("resumed run: %v: listed %d, downloaded %d, present %d, failed %d (first run: %d)\n%s", res.err, listed, downloaded, present, failed, first, res.stderr)
	}
	checkDir(t)

	// A file that does not match its CID is fetched again; a good one is
	// kept.
	var damaged string
	for c := range blobs {
		damaged = c
		break
	}
	os.WriteFile(filepath.Join(dir, damaged), []byte("not the blob"), 0o644)
	res = runCLI(t, runBlobs, "--host", r.url, "-o", dir, "--parallel", "8", alice.did)
	if _, downloaded, present, _ := summary(t, res.stderr); res.code != 0 || downloaded != 1 || present != len(blobs)-1 {
		t.Fatalf("after damage: %v\n%s", res.err, res.stderr)
	}
	checkDir(t)

	// An unknown repository: the host's error, named.
	res = runCLI(t, runBlobs, "--host", r.url, "-o", t.TempDir(), "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	if res.code != 1 || !strings.Contains(res.err.Error(), "RepoNotFound") {
		t.Errorf("unknown repository: %d %v", res.code, res.err)
	}
}

// watchedBuffer is a stderr that tells each write to a callback.
type watchedBuffer struct {
	syncBuffer
	onWrite func(string)
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	w.onWrite(string(p))
	return n, err
}

// TestBlobsWrongBytes: a host that serves bytes that are not the blob asked
// for; the blob fails, is listed, and no file is kept.
func TestBlobsWrongBytes(t *testing.T) {
	good, bad := []byte("good blob"), []byte("bad blob")
	goodCID, badCID := dagcbor.SumRaw(good).String(), dagcbor.SumRaw(bad).String()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/com.atproto.sync.listBlobs":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"cids":[%q,%q]}`, goodCID, badCID)
		case "/xrpc/com.atproto.sync.getBlob":
			if r.URL.Query().Get("cid") == goodCID {
				w.Write(good)
			} else {
				w.Write([]byte("tampered"))
			}
		}
	}))
	defer ts.Close()
	dir := t.TempDir()
	res := runCLI(t, runBlobs, "--host", ts.URL, "-o", dir, "did:plc:abc")
	if res.code != 1 || !strings.Contains(res.stderr, "FAILED "+badCID) || !strings.Contains(res.stderr, "does not match its CID") {
		t.Fatalf("exit %d %v\n%s", res.code, res.err, res.stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != goodCID {
		t.Errorf("files kept: %v", entries)
	}
}
