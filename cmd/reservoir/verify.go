package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
)

var verifyHelp = commandHelp{
	name:  "verify",
	usage: "verify [--key did:key:...] [--plc-url URL] [--did DID] [--partial] FILE.car",
	about: `Verifies a repository CAR file completely:
  - structure: a CAR v1 header whose first root is the commit, every
    section well formed;
  - every block's bytes hash to its CID;
  - the commit: version 3, a valid DID and rev, and its signature, with
    --key or with the #atproto key of the DID's document (resolved through
    --plc-url; did:web documents over HTTPS);
  - the MST: every node present and valid, keys in order at their heights,
    and rebuilding the tree from its keys gives exactly the commit's data
    CID (the canonical form);
  - every record present and a valid DAG-CBOR record.
--partial checks a diff (getRepo with since): blocks and commit only.
Exit status 0 when everything holds, 1 with the first failure otherwise.`,
	example: `  reservoir export --host https://pds.example.com -o alice.car did:plc:ewvi7nxzyoun6zhxrhs64oiz
  reservoir verify alice.car
  reservoir verify --key did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc alice.car`,
}

func runVerify(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, verifyHelp)
	var ids identityFlags
	ids.register(fs, cio, true)
	did := fs.String("did", "", "the account the repository must belong to (default: whatever the commit says)")
	partial := fs.Bool("partial", false, "the CAR is a diff (getRepo since=REV): check the blocks, commit and signature only")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("verify takes one CAR file, got %d arguments", len(pos))
	}
	if *did != "" {
		if _, err := didArg(*did); err != nil {
			return err
		}
	}
	keys, err := ids.keys()
	if err != nil {
		return err
	}
	path := pos[0]
	rc, f, err := openCARFile(cio, "verify "+path, path)
	if err != nil {
		return fmt.Errorf("verify: %s: FAILED: %w", path, err)
	}
	defer f.Close()
	rep, err := verifyWithProgress(ctx, cio, "verify "+path, rc, client.VerifyRepoOptions{DID: *did, Keys: keys, Partial: *partial})
	if err != nil {
		return fmt.Errorf("verify: %s: FAILED: %w", path, err)
	}
	w := cio.stdout
	fmt.Fprintf(w, "ok: %s: %s rev %s, commit %s\n", path, rep.DID, rep.Rev, rep.CommitCID)
	fmt.Fprintf(w, "  %d blocks (%s), each matching its CID\n", rep.Blocks, progress.FormatBytes(rep.CARBytes))
	fmt.Fprintf(w, "  commit signed by %s\n", rep.Key)
	if rep.Partial {
		fmt.Fprintf(w, "  partial CAR: the MST and records were not checked\n")
		return nil
	}
	fmt.Fprintf(w, "  MST valid and canonical: %d nodes, %d records present and valid\n", rep.Nodes, rep.Records)
	if rep.Unreferenced > 0 {
		fmt.Fprintf(w, "  note: %d blocks (%s) are not part of the repository\n", rep.Unreferenced, progress.FormatBytes(rep.UnreferencedBytes))
	}
	return nil
}

// openCARFile opens and indexes a CAR file, every block checked against
// its CID, with progress on large files.
func openCARFile(cio *cliIO, label, path string) (*client.RepoCAR, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is a directory", path)
	}
	var m *progress.Meter
	var opts client.OpenOptions
	if st.Size() > 16<<20 {
		m = progress.New(cio.stderr, progress.Options{Label: label + ": reading", Terminal: cio.terminal})
		m.SetTotals(st.Size(), 0)
		var last int64
		opts.Progress = func(off int64) { m.AddBytes(off - last); last = off }
		m.Start()
	}
	rc, err := client.OpenRepoCAR(f, st.Size(), &opts)
	if m != nil {
		m.Stop()
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return rc, f, nil
}

// verifyWithProgress runs Verify, counting records on large repositories.
func verifyWithProgress(ctx context.Context, cio *cliIO, label string, rc *client.RepoCAR, opts client.VerifyRepoOptions) (*client.RepoReport, error) {
	if rc.Size() > 16<<20 {
		m := progress.New(cio.stderr, progress.Options{Label: label + ": checking", Items: "records", Terminal: cio.terminal})
		var last int
		opts.Progress = func(n int) { m.AddItems(int64(n - last)); last = n }
		m.Start()
		defer m.Stop()
	}
	rep, err := rc.Verify(ctx, opts)
	if errors.Is(err, context.Canceled) {
		return nil, errors.New("interrupted")
	}
	return rep, err
}
