package main

// The plumbing shared by the client subcommands (subscribe, export, blobs,
// verify, inspect, status, hosts): their standard streams, flag parsing
// with flags after arguments, exit statuses (0 ok, 1 failure, 2 usage),
// host and key flags.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
	"github.com/reservoir-atproto/reservoir/identity"
)

// cliIO is what a client subcommand reads and writes.
type cliIO struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal: stderr is a terminal, so progress redraws one line.
	terminal bool
}

func osIO() *cliIO {
	return &cliIO{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: progress.IsTerminal(os.Stderr)}
}

func (c *cliIO) env(name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

// usageError is a command line the subcommand cannot run: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// errHelp: --help was asked for and printed; exit status 0.
var errHelp = errors.New("help printed")

// exitCode is the exit status of a subcommand's result.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// clientMain is the signature of a client subcommand.
type clientMain func(ctx context.Context, cio *cliIO, args []string) error

// clientCommand adapts a client subcommand to the command table: it runs
// until SIGINT or SIGTERM, and exits with status 2 itself on a usage error
// (the table's runner knows only 0 and 1).
func clientCommand(name string, m clientMain) func([]string) error {
	return func(args []string) error {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := m(ctx, osIO(), args)
		switch exitCode(err) {
		case 0:
			return nil
		case 2:
			fmt.Fprintf(os.Stderr, "reservoir %s: %v\nRun 'reservoir %s --help' for usage.\n", name, err, name)
			os.Exit(2)
		}
		return err
	}
}

// command describes a client subcommand for its --help.
type commandHelp struct {
	name    string
	usage   string // after "reservoir "
	about   string
	example string
}

func newFlagSet(cio *cliIO, h commandHelp) *flag.FlagSet {
	fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
	fs.SetOutput(cio.stderr)
	fs.Usage = func() {
		fmt.Fprintf(cio.stderr, "usage: reservoir %s\n\n%s\n\nflags:\n", h.usage, strings.TrimSpace(h.about))
		fs.PrintDefaults()
		fmt.Fprintf(cio.stderr, "\nexample:\n%s\n", strings.TrimRight(h.example, "\n"))
		fmt.Fprintf(cio.stderr, "\nexit status: 0 done, 1 failed (the reason is printed), 2 wrong usage\n")
	}
	return fs
}

// parseArgs parses flags wherever they are among the arguments (flag
// stops at the first argument otherwise: "export DID -o FILE") and returns
// the positional arguments. Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// listFlag is a flag that may repeat and takes comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// identityFlags are --plc-url and --key: where signing keys and PDS
// endpoints come from.
type identityFlags struct {
	plcURL   string
	key      string
	insecure bool
}

func (f *identityFlags) register(fs *flag.FlagSet, cio *cliIO, withKey bool) {
	fs.StringVar(&f.plcURL, "plc-url", cio.env("RESERVOIR_PLC_URL", identity.DefaultPLCURL), "did:plc directory that resolves DIDs to their signing key and host (env RESERVOIR_PLC_URL)")
	fs.BoolVar(&f.insecure, "allow-insecure-hosts", false, "accept http:// and loopback hosts in DID documents, and did:web:localhost%3APORT (tests, private networks)")
	if withKey {
		fs.StringVar(&f.key, "key", "", "the account's signing key (did:key:z... or z...), instead of resolving the DID")
	}
}

func (f *identityFlags) resolver() (*identity.Resolver, error) {
	if _, err := client.ServiceURL(f.plcURL); err != nil {
		return nil, usagef("--plc-url: %v", err)
	}
	return identity.New(identity.Options{PLCURL: f.plcURL, SkipHandleVerification: true, AllowInsecure: f.insecure})
}

// keys returns the source of signing keys: --key, or the resolver.
func (f *identityFlags) keys() (client.KeySource, error) {
	if f.key != "" {
		k, err := client.ParseKey(f.key)
		if err != nil {
			return nil, usagef("--key: %v", err)
		}
		return client.StaticKey(k), nil
	}
	return f.resolver()
}

// hostClient returns a client for --host, or, when it is empty, for the
// account's PDS as its DID document names it.
func hostClient(ctx context.Context, host, did string, ids *identityFlags) (*client.Client, error) {
	if host == "" {
		r, err := ids.resolver()
		if err != nil {
			return nil, err
		}
		pds, err := r.PDSEndpoint(ctx, syntax.DID(did))
		if err != nil {
			return nil, fmt.Errorf("no --host, and the account's host is unknown: %w", err)
		}
		host = pds
	}
	c, err := client.New(host)
	if err != nil {
		return nil, usagef("--host: %v", err)
	}
	c.UserAgent = "reservoir/" + buildVersion()
	return c, nil
}

// didArg checks the DID argument.
func didArg(s string) (string, error) {
	if _, err := syntax.ParseDID(s); err != nil {
		return "", usagef("%q is not a DID: %v", s, err)
	}
	return s, nil
}
