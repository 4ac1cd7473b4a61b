// Command reservoir is the atproto sync server (host, archive, relay,
// collection index) and its client tools, in one binary.
package main

import (
	"fmt"
	"io"
	"os"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the server: hosting, sync endpoints and the embedded store", runServe},
		{"plc", "run a did:plc directory for private networks and tests", runPLC},
		{"collections", "show how many repositories have records in each collection (admin)", runCollections},
		{"subscribe", "print a host's firehose as JSON lines, records decoded", clientCommand("subscribe", runSubscribe)},
		{"export", "download and verify a repository, as a CAR file or JSON records", clientCommand("export", runExport)},
		{"blobs", "download every blob of a repository, each checked against its CID", clientCommand("blobs", runBlobs)},
		{"verify", "verify a repository CAR file: blocks, MST, records, signature", clientCommand("verify", runVerify)},
		{"inspect", "summarize a repository CAR file: commit, records per collection, sizes", clientCommand("inspect", runInspect)},
		{"status", "show a repository's status and latest commit on a host", clientCommand("status", runStatus)},
		{"hosts", "list the hosts a relay crawls", clientCommand("hosts", runHosts)},
		{"help", "list the subcommands", nil},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: reservoir SUBCOMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "subcommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			if err := c.run(args[1:]); err != nil {
				fmt.Fprintln(stderr, "reservoir:", err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "reservoir: unknown subcommand %q\n\n", args[0])
	usage(stderr)
	return 2
}
