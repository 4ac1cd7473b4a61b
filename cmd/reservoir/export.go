package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
	"github.com/reservoir-atproto/reservoir/dagcbor"
)

var exportHelp = commandHelp{
	name:  "export",
	usage: "export [--host URL] [-o FILE|DIR] [--format car|dir] [--since REV] [--key did:key:...] [--plc-url URL] DID",
	about: `Downloads a repository with com.atproto.sync.getRepo and verifies it before
keeping it: every block against its CID, the commit's signature (with --key,
or the key of the DID's document resolved through --plc-url), the whole MST
in its canonical form, and every record.

--format car (the default) writes the CAR to FILE (default DID.car, with
":" replaced by "_"; "-" writes to standard output once verified).
--format dir writes one JSON file per record, in the atproto JSON form, as
DIR/<collection>/<rkey>.json (DIR defaults to the DID with ":" replaced;
it must be new or empty).
--since REV asks only for the blocks written after that rev (a diff, CAR
only): its blocks, commit and signature are checked, not the tree.
Without --host, the account's own PDS is asked, as its DID document names it.
Nothing is written when verification fails (exit status 1).`,
	example: `  reservoir export --host https://pds.example.com did:plc:ewvi7nxzyoun6zhxrhs64oiz
  reservoir export --format dir -o alice/ did:plc:ewvi7nxzyoun6zhxrhs64oiz`,
}

func runExport(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, exportHelp)
	host := fs.String("host", "", "the host or relay to download from (https://, http://, wss:// or ws://; default: the account's PDS)")
	out := fs.String("o", "", "output CAR file, or directory with --format dir")
	format := fs.String("format", "car", "car: one CAR file; dir: one JSON file per record")
	since := fs.String("since", "", "only the blocks written after this rev (a diff; --format car only)")
	noVerify := fs.Bool("no-verify", false, "keep the download without verifying it (block hashes are still checked)")
	var ids identityFlags
	ids.register(fs, cio, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("export takes one DID, got %d arguments", len(pos))
	}
	did, err := didArg(pos[0])
	if err != nil {
		return err
	}
	switch *format {
	case "car", "dir":
	default:
		return usagef("--format must be car or dir, not %q", *format)
	}
	if *since != "" {
		if _, err := syntax.ParseTID(*since); err != nil {
			return usagef("--since %q is not a rev (TID): %v", *since, err)
		}
		if *format == "dir" {
			return usagef("--since gives a diff, which holds only the changed blocks: it needs --format car")
		}
	}
	var keys client.KeySource
	if !*noVerify {
		if keys, err = ids.keys(); err != nil {
			return err
		}
	}
	target := *out
	if target == "" {
		target = strings.ReplaceAll(did, ":", "_")
		if *format == "car" {
			target += ".car"
		}
	}
	if *format == "dir" {
		if err := checkEmptyDir(target); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	c, err := hostClient(ctx, *host, did, &ids)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}

	// Download to a temporary file next to the output, verify, then move or
	// unpack it.
	tmpDir := filepath.Dir(target)
	if target == "-" {
		tmpDir = ""
	}
	if *format == "dir" {
		tmpDir = target
	}
	tmp, err := os.CreateTemp(tmpDir, ".reservoir-export-*.car")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	label := "export " + did
	if err := download(ctx, cio, label, c, did, *since, tmp); err != nil {
		return fmt.Errorf("export: %s from %s: %w", did, c.BaseURL, err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	rc, err := client.OpenRepoCAR(tmp, st.Size(), nil)
	if err != nil {
		return fmt.Errorf("export: %s: %w", did, err)
	}
	rep, err := verifyWithProgress(ctx, cio, label, rc, client.VerifyRepoOptions{DID: did, Keys: keys, Partial: *since != ""})
	if err != nil {
		return fmt.Errorf("export: %s: verification FAILED, nothing written: %w", did, err)
	}
	switch {
	case *format == "dir":
		n, err := writeRecords(ctx, rc, target)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(cio.stderr, "export: %s rev %s: %d records written under %s\n", did, rep.Rev, n, target)
	case target == "-":
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(cio.stdout, tmp); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	default:
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), target); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(cio.stderr, "export: %s rev %s: %s written to %s\n", did, rep.Rev, progress.FormatBytes(rep.CARBytes), target)
	}
	describe(cio, rep)
	return nil
}

// describe says on stderr what was verified.
func describe(cio *cliIO, rep *client.RepoReport) {
	how := "not checked (--no-verify)"
	if rep.SignatureVerified {
		how = "verified with " + rep.Key
	}
	if rep.Partial {
		fmt.Fprintf(cio.stderr, "  diff: %d blocks, each matching its CID; signature %s\n", rep.Blocks, how)
		return
	}
	fmt.Fprintf(cio.stderr, "  %d records in %d collections, %d blocks each matching its CID, MST canonical; signature %s\n",
		rep.Records, len(rep.Collections), rep.Blocks, how)
}

// download streams getRepo into w, with progress.
func download(ctx context.Context, cio *cliIO, label string, c *client.Client, did, since string, w io.Writer) error {
	body, err := c.GetRepo(ctx, did, since)
	if err != nil {
		return err
	}
	defer body.Close()
	m := progress.New(cio.stderr, progress.Options{Label: label, Terminal: cio.terminal})
	m.Start()
	_, err = io.Copy(m.Writer(w), body)
	m.Stop()
	return err
}

// checkEmptyDir accepts a directory that does not exist (it is created) or
// is empty.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: export records into a new directory", dir)
	}
	return nil
}

// writeRecords writes every record as DIR/<collection>/<rkey>.json. Paths
// are checked as an NSID and a record key, so that no path escapes DIR.
func writeRecords(ctx context.Context, rc *client.RepoCAR, dir string) (int, error) {
	n := 0
	made := map[string]bool{}
	err := rc.Records(ctx, func(path string, _ cid.Cid, data []byte) error {
		coll, rkey, err := syntax.ParseRepoPath(path)
		if err != nil {
			return fmt.Errorf("record path %q: %w", path, err)
		}
		rec, err := dagcbor.UnmarshalRecord(data)
		if err != nil {
			return fmt.Errorf("record %s: %w", path, err)
		}
		js, err := dagcbor.ToJSON(rec)
		if err != nil {
			return fmt.Errorf("record %s: %w", path, err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, js, "", "  "); err != nil {
			return err
		}
		pretty.WriteByte('\n')
		sub := filepath.Join(dir, string(coll))
		if !made[sub] {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			made[sub] = true
		}
		n++
		return os.WriteFile(filepath.Join(sub, string(rkey)+".json"), pretty.Bytes(), 0o644)
	})
	return n, err
}
