package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
)

var blobsHelp = commandHelp{
	name:  "blobs",
	usage: "blobs [--host URL] -o DIR [--parallel N] [--since REV] [-v] DID",
	about: `Downloads every blob of a repository: com.atproto.sync.listBlobs (all pages),
then com.atproto.sync.getBlob for each, N at a time. Each blob is checked
against its CID before it is kept, as DIR/<cid>; a download goes to
DIR/<cid>.partial first, so an interrupted run leaves no wrong file.
Running again resumes: blobs already in DIR are checked, and kept when they
match their CID (downloaded again otherwise). Blobs that fail are listed and
the exit status is 1. Without --host, the account's own PDS is asked.`,
	example: `  reservoir blobs --host https://pds.example.com -o blobs/ did:plc:ewvi7nxzyoun6zhxrhs64oiz`,
}

func runBlobs(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, blobsHelp)
	host := fs.String("host", "", "the host to download from (https://, http://, wss:// or ws://; default: the account's PDS)")
	out := fs.String("o", "", "output directory (required)")
	parallel := fs.Int("parallel", 4, "downloads at a time")
	since := fs.String("since", "", "only the blobs of records written after this rev")
	verbose := fs.Bool("v", false, "a line per blob")
	var ids identityFlags
	ids.register(fs, cio, false)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("blobs takes one DID, got %d arguments", len(pos))
	}
	did, err := didArg(pos[0])
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("-o DIR is required")
	}
	if *parallel < 1 || *parallel > 64 {
		return usagef("--parallel must be between 1 and 64")
	}
	if *since != "" {
		if _, err := syntax.ParseTID(*since); err != nil {
			return usagef("--since %q is not a rev (TID): %v", *since, err)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	c, err := hostClient(ctx, *host, did, &ids)
	if err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	var cids []cid.Cid
	for b, err := range c.AllBlobs(ctx, did, *since, 0) {
		if err != nil {
			return fmt.Errorf("blobs: listing %s on %s: %w", did, c.BaseURL, err)
		}
		cids = append(cids, b)
	}

	m := progress.New(cio.stderr, progress.Options{Label: "blobs " + did, Items: "blobs", Terminal: cio.terminal})
	m.SetTotals(0, int64(len(cids)))
	m.Start()
	d := &blobDownloader{c: c, did: did, dir: *out, m: m, verbose: *verbose, log: cio.stderr}
	work := make(chan cid.Cid)
	var wg sync.WaitGroup
	for range *parallel {
		wg.Go(func() {
			for b := range work {
				d.fetch(ctx, b)
			}
		})
	}
	for _, b := range cids {
		select {
		case work <- b:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	m.Stop()

	fmt.Fprintf(cio.stderr, "blobs: %d listed: %d downloaded (%s), %d already present, %d failed\n",
		len(cids), d.downloaded, progress.FormatBytes(d.bytes), d.present, len(d.failed))
	if ctx.Err() != nil {
		return fmt.Errorf("blobs: interrupted; run again to resume")
	}
	if len(d.failed) > 0 {
		for _, f := range d.failed {
			fmt.Fprintf(cio.stderr, "  FAILED %v\n", f)
		}
		return fmt.Errorf("blobs: %d of %d blobs failed", len(d.failed), len(cids))
	}
	return nil
}

// blobDownloader fetches blobs into a directory, one goroutine per
// download.
type blobDownloader struct {
	c       *client.Client
	did     string
	dir     string
	m       *progress.Meter
	verbose bool

	mu         sync.Mutex // guards what follows and log
	log        io.Writer
	downloaded int
	present    int
	bytes      int64
	failed     []error
}

func (d *blobDownloader) fetch(ctx context.Context, b cid.Cid) {
	path := filepath.Join(d.dir, b.String())
	if err := checkBlobFile(path, b); err == nil {
		d.done(func() { d.present++ }, "present", b, 0)
		return
	}
	n, err := d.download(ctx, b, path)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		d.done(func() { d.failed = append(d.failed, fmt.Errorf("%s: %w", b, err)) }, "FAILED", b, 0)
		return
	}
	d.done(func() { d.downloaded++; d.bytes += n }, "downloaded", b, n)
}

func (d *blobDownloader) done(count func(), what string, b cid.Cid, n int64) {
	d.m.AddItems(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	count()
	if d.verbose {
		fmt.Fprintf(d.log, "%s %s (%s)\n", what, b, progress.FormatBytes(n))
	}
}

// download writes the blob to path.partial, checked against its CID as it
// streams, then renames it.
func (d *blobDownloader) download(ctx context.Context, b cid.Cid, path string) (int64, error) {
	blob, err := d.c.GetBlob(ctx, d.did, b)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	partial := path + ".partial"
	f, err := os.Create(partial)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, countReader{blob, d.m})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partial)
		return 0, err
	}
	return n, os.Rename(partial, path)
}

type countReader struct {
	r io.Reader
	m *progress.Meter
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.AddBytes(int64(n))
	return n, err
}

// checkBlobFile reports whether the file at path holds the blob b.
func checkBlobFile(path string, b cid.Cid) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := client.NewCIDVerifier(b)
	if err != nil {
		return err
	}
	if _, err := io.Copy(v, f); err != nil {
		return err
	}
	if err := v.Check(); err != nil {
		return errors.Join(err, fmt.Errorf("%s will be downloaded again", path))
	}
	return nil
}
