package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
)

var inspectHelp = commandHelp{
	name:  "inspect",
	usage: "inspect [--json] FILE.car",
	about: `Summarizes a repository CAR file: the commit (DID, rev, CID, data CID),
the number of blocks and bytes, MST nodes, records per collection with
their sizes, the blobs the records reference, and blocks that are not part
of the repository. Every block is checked against its CID on the way, but
not the signature: use verify for that. A diff (getRepo since=REV) shows
its commit and blocks only.`,
	example: `  reservoir inspect alice.car
  reservoir inspect --json alice.car | jq '.collections'`,
}

// inspectJSON is inspect's --json output.
type inspectJSON struct {
	File              string            `json:"file"`
	DID               string            `json:"did"`
	Rev               string            `json:"rev"`
	Commit            string            `json:"commit"`
	Data              string            `json:"data"`
	Version           int64             `json:"version"`
	Bytes             int64             `json:"bytes"`
	Blocks            int               `json:"blocks"`
	Partial           bool              `json:"partial,omitempty"`
	Nodes             int               `json:"nodes"`
	NodeBytes         int64             `json:"nodeBytes"`
	Records           int               `json:"records"`
	RecordBytes       int64             `json:"recordBytes"`
	Blobs             int               `json:"blobs"`
	BlobBytes         int64             `json:"blobBytes"`
	Unreferenced      int               `json:"unreferencedBlocks"`
	UnreferencedBytes int64             `json:"unreferencedBytes"`
	Collections       []collectionsJSON `json:"collections"`
}

type collectionsJSON struct {
	Collection string `json:"collection"`
	Records    int    `json:"records"`
	Bytes      int64  `json:"bytes"`
}

func runInspect(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, inspectHelp)
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("inspect takes one CAR file, got %d arguments", len(pos))
	}
	path := pos[0]
	rc, f, err := openCARFile(cio, "inspect "+path, path)
	if err != nil {
		return fmt.Errorf("inspect: %s: %w", path, err)
	}
	defer f.Close()
	rep, err := verifyWithProgress(ctx, cio, "inspect "+path, rc, client.VerifyRepoOptions{})
	if errors.Is(err, client.ErrMissingBlock) {
		// A diff, or a damaged export: show what is there.
		rep, err = rc.Verify(ctx, client.VerifyRepoOptions{Partial: true})
	}
	if err != nil {
		return fmt.Errorf("inspect: %s: %w", path, err)
	}
	if *asJSON {
		out := inspectJSON{
			File: path, DID: string(rep.DID), Rev: string(rep.Rev), Commit: rep.CommitCID.String(), Data: rep.Data.String(),
			Version: rep.Version, Bytes: rep.CARBytes, Blocks: rep.Blocks, Partial: rep.Partial,
			Nodes: rep.Nodes, NodeBytes: rep.NodeBytes, Records: rep.Records, RecordBytes: rep.RecordBytes,
			Blobs: rep.Blobs, BlobBytes: rep.BlobBytes, Unreferenced: rep.Unreferenced, UnreferencedBytes: rep.UnreferencedBytes,
			Collections: []collectionsJSON{},
		}
		for _, c := range rep.Collections {
			out.Collections = append(out.Collections, collectionsJSON(c))
		}
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "%s\n", data)
		return nil
	}
	w := cio.stdout
	fmt.Fprintf(w, "file:      %s (%s)\n", path, progress.FormatBytes(rep.CARBytes))
	fmt.Fprintf(w, "did:       %s\n", rep.DID)
	fmt.Fprintf(w, "rev:       %s\n", rep.Rev)
	fmt.Fprintf(w, "commit:    %s (version %d)\n", rep.CommitCID, rep.Version)
	fmt.Fprintf(w, "data:      %s (MST root)\n", rep.Data)
	fmt.Fprintf(w, "blocks:    %d\n", rep.Blocks)
	if rep.Partial {
		fmt.Fprintf(w, "partial:   the CAR does not hold the whole tree (a diff, or damaged); no record counts\n")
		return nil
	}
	fmt.Fprintf(w, "nodes:     %d (%s)\n", rep.Nodes, progress.FormatBytes(rep.NodeBytes))
	fmt.Fprintf(w, "records:   %d (%s)\n", rep.Records, progress.FormatBytes(rep.RecordBytes))
	fmt.Fprintf(w, "blobs:     %d referenced (%s)\n", rep.Blobs, progress.FormatBytes(rep.BlobBytes))
	if rep.Unreferenced > 0 {
		fmt.Fprintf(w, "other:     %d blocks (%s) not part of the repository\n", rep.Unreferenced, progress.FormatBytes(rep.UnreferencedBytes))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RECORDS\tBYTES\t\tCOLLECTION")
	for _, c := range rep.Collections {
		fmt.Fprintf(tw, "%d\t%s\t\t%s\n", c.Records, progress.FormatBytes(c.Bytes), c.Collection)
	}
	return tw.Flush()
}
