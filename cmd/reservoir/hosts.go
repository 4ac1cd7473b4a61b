package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

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
	var hosts []client.Host
	for h, err := range c.AllHosts(ctx, hostsPageLimit) {
		if err != nil {
			return fmt.Errorf("hosts: %w", err)
		}
		if *asJSON {
			line, _ := json.Marshal(map[string]any{"hostname": h.Hostname, "status": h.Status, "seq": h.Seq, "accountCount": h.AccountCount})
			fmt.Fprintf(cio.stdout, "%s\n", line)
		}
		hosts = append(hosts, h)
	}
	n := len(hosts)
	if !*asJSON {
		writeHostsTable(cio.stdout, hosts)
	}
	fmt.Fprintf(cio.stderr, "%d hosts\n", n)
	return nil
}

// writeHostsTable writes the hosts as a table: names and statuses
// left-aligned, numbers right-aligned.
func writeHostsTable(w io.Writer, hosts []client.Host) {
	wName, wStatus, wSeq, wAcc := len("HOSTNAME"), len("STATUS"), len("SEQ"), len("ACCOUNTS")
	for _, h := range hosts {
		wName = max(wName, len(h.Hostname))
		wStatus = max(wStatus, len(h.Status))
		wSeq = max(wSeq, len(strconv.FormatInt(h.Seq, 10)))
		wAcc = max(wAcc, len(strconv.FormatInt(h.AccountCount, 10)))
	}
	fmt.Fprintf(w, "%-*s  %-*s  %*s  %*s\n", wName, "HOSTNAME", wStatus, "STATUS", wSeq, "SEQ", wAcc, "ACCOUNTS")
	for _, h := range hosts {
		fmt.Fprintf(w, "%-*s  %-*s  %*d  %*d\n", wName, h.Hostname, wStatus, h.Status, wSeq, h.Seq, wAcc, h.AccountCount)
	}
}
