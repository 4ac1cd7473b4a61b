package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/internal/loadgen"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// repoCAR builds the CAR of a synthetic repository of n records signed by
// key.
func repoCAR(did string, key atcrypto.PrivateKey, n int, seed int64) ([]byte, error) {
	type block struct {
		c    cid.Cid
		data []byte
	}
	var blocks []block
	b := &loadgen.BigRepo{DID: did, Key: key, Records: n, Seed: seed, Emit: func(c cid.Cid, data []byte) error {
		blocks = append(blocks, block{c, append([]byte(nil), data...)})
		return nil
	}}
	root, _, err := b.Build()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, []cid.Cid{root})
	if err != nil {
		return nil, err
	}
	// The commit first, as getRepo sends it.
	if err := w.WriteBlock(root, blocks[len(blocks)-1].data); err != nil {
		return nil, err
	}
	for _, bl := range blocks[:len(blocks)-1] {
		if err := w.WriteBlock(bl.c, bl.data); err != nil {
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func runImport(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	repos := fs.Int("repos", 4, "repositories imported")
	records := fs.Int("records", 50_000, "records per repository")
	workers := fs.Int("workers", 2, "imports at once")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench import [flags]\n\nVerified CAR import (P5): --repos CARs of --records records (the op mix) are imported into\nhosted accounts of an on-disk store with host.ImportRepo (every hash, the signature, every\nnode and record, the canonical rebuild), --workers at once: records/s.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *repos < 1 || *records < 1 || *workers < 1 {
		return fmt.Errorf("%w: want ≥ 1 repo, record and worker", errUsage)
	}
	work, cleanup, err := e.work()
	if err != nil {
		return err
	}
	defer cleanup()
	db, err := store.Open(store.Options{Dir: filepath.Join(work, "store"), GCInterval: -1})
	if err != nil {
		return err
	}
	defer db.Close()
	h := host.New(host.Options{DB: db, Repos: &repostore.Repos{DB: db}})
	e.logf("building %d CARs of %d records", *repos, *records)
	dids := make([]string, *repos)
	cars := make([][]byte, *repos)
	var carBytes int64
	for i := range cars {
		key, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			return err
		}
		dids[i] = fmt.Sprintf("did:plc:importbench%013d", i)
		if _, err := h.CreateAccount(ctx, host.CreateAccountInput{Handle: fmt.Sprintf("import%d.bench.test", i), DID: dids[i], SigningKey: key.Multibase()}); err != nil {
			return err
		}
		if cars[i], err = repoCAR(dids[i], key, *records, int64(i)); err != nil {
			return err
		}
		carBytes += int64(len(cars[i]))
	}
	stopProfile, err := e.startProfile()
	if err != nil {
		return err
	}
	settle()
	start, cpu0 := time.Now(), selfCPU()
	jobs := make(chan int)
	errs := make(chan error, *repos)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				errs <- h.ImportRepo(ctx, dids[i], bytes.NewReader(cars[i]))
			}
		}()
	}
	for i := range cars {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed, cpu := time.Since(start), selfCPU()-cpu0
	stopProfile()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	total := *repos * *records
	e.result("reservoir", fmt.Sprintf("%s records/s imported and verified (%d repos × %d records, %.1f MB of CAR, %.2f s, %d at once), %.2f cpu-µs/record",
		thousands(float64(total)/elapsed.Seconds()), *repos, *records, float64(carBytes)/1e6, elapsed.Seconds(), *workers,
		float64(cpu.Microseconds())/float64(total)))
	return nil
}
