package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/internal/loadgen"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// populateRepo writes a synthetic repository of n records straight into
// the store, in bounded chunks.
func populateRepo(ctx context.Context, db *store.DB, did string, n int) error {
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return err
	}
	res, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: did, Hosted: true}})
	if err != nil {
		return err
	}
	var chunk []store.Block
	flush := func(head *store.Head) error {
		_, err := db.Apply(ctx, &store.Change{UID: res.UID, Head: head, NewBlocks: chunk})
		chunk = chunk[:0]
		return err
	}
	var placeholder *store.Head
	b := &loadgen.BigRepo{DID: did, Key: key, Records: n, Seed: 1, Emit: func(c cid.Cid, data []byte) error {
		chunk = append(chunk, store.Block{CID: c, Data: append([]byte(nil), data...)})
		if len(chunk) >= 20_000 {
			if placeholder == nil {
				// Blocks need a head to belong to; the real one comes last.
				placeholder = &store.Head{Commit: c, Rev: "2222222222222", Data: c}
			}
			return flush(placeholder)
		}
		return nil
	}}
	cc, commit, err := b.Build()
	if err != nil {
		return err
	}
	return flush(&store.Head{Commit: cc, Rev: string(commit.Rev), Data: commit.Data})
}

func runGetRepo(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("getrepo", flag.ContinueOnError)
	sizes := fs.String("records", "100000,1000000", "repository sizes, comma-separated")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench getrepo [flags]\n\ngetRepo (P4): a synthetic repository (the op mix's records) is written into an on-disk store,\ncompacted, and downloaded over loopback HTTP by a client in this process: MB/s, time to first\nbyte, and the process's peak RSS above what it was before the request.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --records: %q", errUsage, s)
		}
		ns = append(ns, n)
	}
	work, cleanup, err := e.work()
	if err != nil {
		return err
	}
	defer cleanup()
	for _, n := range ns {
		if err := getRepoOne(ctx, e, filepath.Join(work, fmt.Sprintf("getrepo-%d", n)), n); err != nil {
			return err
		}
	}
	return nil
}

func getRepoOne(ctx context.Context, e *benchEnv, dir string, n int) error {
	db, err := store.Open(store.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		return err
	}
	defer db.Close()
	did := "did:web:getrepo.bench.test"
	e.logf("writing a repository of %d records", n)
	if err := populateRepo(ctx, db, did, n); err != nil {
		return err
	}
	if err := db.Compact(ctx); err != nil {
		return err
	}
	srv := xrpc.NewServer(xrpc.Options{})
	api.New(api.Options{DB: db}).Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/xrpc/com.atproto.sync.getRepo?did=" + did
	stopProfile, err := e.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	settle()
	before := selfRSS()
	peak := samplePeak()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		peak.end()
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		peak.end()
		return fmt.Errorf("getRepo answered %s", resp.Status)
	}
	buf := make([]byte, 256<<10)
	var total int64
	var first time.Duration
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 && total == 0 {
			first = time.Since(start)
		}
		total += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			peak.end()
			return err
		}
	}
	elapsed := time.Since(start)
	growth := peak.end() - before
	e.result("reservoir", fmt.Sprintf("getRepo of %s records: %.0f MB/s (%.1f MiB CAR in %.2f s), first byte %.1f ms, RSS growth %s",
		thousands(float64(n)), float64(total)/1e6/elapsed.Seconds(), float64(total)/(1<<20), elapsed.Seconds(),
		float64(first.Microseconds())/1000, mib(max(growth, 0))))
	return nil
}
