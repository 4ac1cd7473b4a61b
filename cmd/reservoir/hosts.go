package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/reservoir-atproto/reservoir/client"
)

var hostsHelp = commandHelp{
	name:  "hosts",
	usage: "hosts [--json] URL",
	about: `Lists the hosts (PDSes) a relay crawls, with com.atproto.sync.listHosts,
following every page: hostname, status (active, idle, offline, throttled,
banned), the last seq the relay processed from the host, and its accounts.
URL is the relay's root: https://, http://, wss:// or ws://.`,
	example: `  reservoir hosts https://bsky.network
  reservoir hosts --json wss://relay.example.com | jq .hostname`,
}

// hostsPageLimit is the page size asked for (0: the lexicon's maximum; a
// variable so that tests can page).
var hostsPageLimit = 0

func runHosts(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, hostsHelp)
	asJSON := fs.Bool("json", false, "one JSON object per host instead of a table")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("hosts takes one URL, got %d arguments", len(pos))
	}
	c, err := client.New(pos[0])
	if err != nil {
		return usagef("%v", err)
	}
	c.UserAgent = "reservoir/" + buildVersion()
	tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	if !*asJSON {
		fmt.Fprintln(tw, "HOSTNAME\tSTATUS\tSEQ\tACCOUNTS\t")
	}
	n := 0
	for h, err := range c.AllHosts(ctx, hostsPageLimit) {
		if err != nil {
			tw.Flush()
			return fmt.Errorf("hosts: %w", err)
		}
		n++
		if *asJSON {
			line, _ := json.Marshal(map[string]any{"hostname": h.Hostname, "status": h.Status, "seq": h.Seq, "accountCount": h.AccountCount})
			fmt.Fprintf(cio.stdout, "%s\n", line)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", h.Hostname, h.Status, h.Seq, h.AccountCount)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(cio.stderr, "%d hosts\n", n)
	return nil
}
