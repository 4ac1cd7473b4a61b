package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// populate writes a signed repository of n post records straight into the
// store (the MST built by the streaming Builder), in bounded chunks.
func populate(b *testing.B, db *store.DB, did string, n int) {
	b.Helper()
	ctx := context.Background()
	key, _ := atcrypto.GeneratePrivateKeyK256()
	res, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: did, Hosted: true}})
	if err != nil {
		b.Fatal(err)
	}
	uid := res.UID
	rev := string(syntax.NewTIDNow(0))
	var chunk []store.Block
	flush := func(head *store.Head) {
		if head == nil {
			head = &store.Head{Commit: dagcbor.SumCBOR([]byte{0xa0}), Rev: rev, Data: dagcbor.SumCBOR([]byte{0xa0})}
		}
		if _, err := db.Apply(ctx, &store.Change{UID: uid, Head: head, NewBlocks: chunk}); err != nil {
			b.Fatal(err)
		}
		chunk = chunk[:0]
	}
	builder := mst.NewBuilder(func(c cid.Cid, data []byte) error {
		chunk = append(chunk, store.Block{CID: c, Data: append([]byte(nil), data...)})
		return nil
	})
	for i := 0; i < n; i++ {
		rec, _ := dagcbor.Marshal(map[string]any{
			"$type": "app.bsky.feed.post", "createdAt": "2026-11-25T00:00:00.000Z", "langs": []any{"en"},
			"text": fmt.Sprintf("post %d: a few words about the weather, the news and what I had for lunch today, as people do", i),
		})
		c := dagcbor.SumCBOR(rec)
		path := "app.bsky.feed.post/" + string(syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000+i)<<10))
		if err := builder.Add([]byte(path), c); err != nil {
			b.Fatal(err)
		}
		chunk = append(chunk, store.Block{CID: c, Data: rec})
		if len(chunk) >= 20_000 {
			flush(nil)
		}
	}
	data, err := builder.Finish()
	if err != nil {
		b.Fatal(err)
	}
	commit := &repo.Commit{DID: syntax.DID(did), Version: 3, Data: data, Rev: syntax.TID(rev)}
	if err := commit.Sign(key); err != nil {
		b.Fatal(err)
	}
	cb := commit.Bytes()
	cc := dagcbor.SumCBOR(cb)
	chunk = append(chunk, store.Block{CID: cc, Data: cb})
	flush(&store.Head{Commit: cc, Rev: rev, Data: data})
}

// rss is the process's resident set size in bytes.
func rss() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkGetRepo serves com.atproto.sync.getRepo of a 100k- and a
// 1M-record repository over loopback HTTP: MB/s, time to first byte, and
// how far the process's RSS rises above where it was before the request.
func BenchmarkGetRepo(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			db, err := store.Open(store.Options{Dir: b.TempDir(), GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			did := "did:web:bench.test"
			populate(b, db, did, n)
			if err := db.Compact(context.Background()); err != nil {
				b.Fatal(err)
			}
			srv := xrpc.NewServer(xrpc.Options{})
			api.New(api.Options{DB: db}).Register(srv)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			url := ts.URL + "/xrpc/com.atproto.sync.getRepo?did=" + did
			runtime.GC()
			debug.FreeOSMemory()
			base := rss()
			var m0 runtime.MemStats
			runtime.ReadMemStats(&m0)
			var peak atomic.Int64
			stop := make(chan struct{})
			go func() {
				t := time.NewTicker(2 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if r := rss(); r > peak.Load() {
							peak.Store(r)
						}
					}
				}
			}()
			var total int64
			var ttfb time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 64<<10)
				k, err := resp.Body.Read(buf)
				if k == 0 || (err != nil && err != io.EOF) {
					b.Fatalf("first read: %d bytes, %v", k, err)
				}
				ttfb += time.Since(start)
				rest, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("status %d, %v", resp.StatusCode, err)
				}
				total += int64(k) + rest
			}
			b.StopTimer()
			close(stop)
			var m1 runtime.MemStats
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(int64(m1.HeapSys)-int64(m0.HeapSys))/(1<<20), "go-heap-sys-growth-MiB")
			b.SetBytes(total / int64(b.N))
			b.ReportMetric(float64(ttfb.Microseconds())/float64(b.N)/1000, "ttfb-ms")
			b.ReportMetric(float64(peak.Load()-base)/(1<<20), "rss-growth-MiB")
			b.ReportMetric(float64(total/int64(b.N))/(1<<20), "car-MiB")
		})
	}
}
