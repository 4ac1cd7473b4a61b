package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/reservoir-atproto/reservoir/client"
)

var statusHelp = commandHelp{
	name:  "status",
	usage: "status [--host URL] [--json] DID",
	about: `Shows a repository's status on a host: com.atproto.sync.getRepoStatus
(active, status, rev) and com.atproto.sync.getLatestCommit (the current
commit's CID and rev). Without --host, the account's own PDS is asked, as
its DID document names it (resolved through --plc-url).`,
	example: `  reservoir status --host https://bsky.network did:plc:ewvi7nxzyoun6zhxrhs64oiz`,
}

func runStatus(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, statusHelp)
	host := fs.String("host", "", "the host or relay to ask (https://, http://, wss:// or ws://)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var ids identityFlags
	ids.register(fs, cio, false)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("status takes one DID, got %d arguments", len(pos))
	}
	did, err := didArg(pos[0])
	if err != nil {
		return err
	}
	c, err := hostClient(ctx, *host, did, &ids)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	st, err := c.GetRepoStatus(ctx, did)
	if err != nil {
		return fmt.Errorf("status: %s: %w", c.BaseURL, err)
	}
	lc, lcErr := c.GetLatestCommit(ctx, did)
	if lcErr != nil && !client.IsRepoUnavailable(lcErr) && !client.IsNotFound(lcErr) {
		return fmt.Errorf("status: %s: %w", c.BaseURL, lcErr)
	}
	if *asJSON {
		out := map[string]any{"host": c.BaseURL, "did": st.DID, "active": st.Active}
		if st.Status != "" {
			out["status"] = st.Status
		}
		if st.Rev != "" {
			out["rev"] = st.Rev
		}
		if lc != nil {
			out["latestCommit"] = map[string]any{"cid": lc.CID.String(), "rev": lc.Rev}
		} else {
			out["latestCommitError"] = apiErrorName(lcErr)
		}
		line, _ := json.Marshal(out)
		fmt.Fprintf(cio.stdout, "%s\n", line)
		return nil
	}
	status := st.Status
	if status == "" {
		status = "-"
	}
	rev := st.Rev
	if rev == "" {
		rev = "-"
	}
	fmt.Fprintf(cio.stdout, "host:    %s\ndid:     %s\nactive:  %t\nstatus:  %s\nrev:     %s\n", c.BaseURL, st.DID, st.Active, status, rev)
	if lc != nil {
		fmt.Fprintf(cio.stdout, "commit:  %s (rev %s)\n", lc.CID, lc.Rev)
	} else {
		fmt.Fprintf(cio.stdout, "commit:  not served (%s)\n", apiErrorName(lcErr))
	}
	return nil
}

// apiErrorName is the lexicon name of an API error, or its text.
func apiErrorName(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Name
	}
	return fmt.Sprint(err)
}
