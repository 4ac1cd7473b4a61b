package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// scenario is one subcommand.
type scenario struct {
	name, summary string
	run           func(ctx context.Context, env *benchEnv, args []string) error
}

var scenarios = []scenario{
	{"ingest", "verified commits/s accepted by a relay from the pre-generated stream (P1)", runIngest},
	{"fanout", "N consumers at R events/s: delivered frames/s and RSS per consumer (P2)", runFanout},
	{"replay", "catch-up replay: events/s to one consumer from 1M events back (P3)", runReplay},
	{"getrepo", "getRepo of 100k- and 1M-record repositories: MB/s, first byte, RSS growth (P4)", runGetRepo},
	{"import", "verified CAR import: records/s (P5)", runImport},
	{"rss", "steady-state RSS with 1M archived accounts at 2,000 events/s (P6)", runRSS},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: reservoir-bench <scenario> [flags]   (reservoir-bench <scenario> --help for its flags)")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
	}
}

// run is the command: exit code 0 ok, 1 failure, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, s := range scenarios {
		if s.name != args[0] {
			continue
		}
		env := &benchEnv{out: stdout, log: stderr, scenario: s.name}
		err := s.run(ctx, env, args[1:])
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "reservoir-bench %s: %v\n", s.name, err)
			return 2
		case err != nil:
			fmt.Fprintf(stderr, "reservoir-bench %s: %v\n", s.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "reservoir-bench: unknown scenario %q\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage")

// benchEnv is what every scenario shares: output, the common flags.
type benchEnv struct {
	out, log   io.Writer
	scenario   string
	cacheDir   string
	workDir    string
	cpuProfile string
	memProfile string
	keep       bool
	quiet      bool
}

// commonFlags registers the flags every scenario takes.
func (e *benchEnv) commonFlags(fs *flag.FlagSet) {
	def := filepath.Join(os.TempDir(), "reservoir-bench")
	if d, err := os.UserCacheDir(); err == nil {
		def = filepath.Join(d, "reservoir-bench")
	}
	fs.StringVar(&e.cacheDir, "cache-dir", def, "where generated streams (and the built reservoir binary) are cached")
	fs.StringVar(&e.workDir, "work-dir", "", "where relays keep their data during the run (default: a temporary directory, removed after)")
	fs.StringVar(&e.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file of this process (replay, getrepo, import; ingest with --in-process)")
	fs.StringVar(&e.memProfile, "memprofile", "", "write a heap profile of this process at the end of the measured phase (rss and fanout with --in-process: the relay's heap, and in fanout the consumers')")
	fs.BoolVar(&e.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&e.quiet, "quiet", false, "no progress lines on stderr")
}

// parse parses a scenario's flags.
func (e *benchEnv) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(e.log)
	e.commonFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

// work returns the run's work directory and a cleanup.
func (e *benchEnv) work() (string, func(), error) {
	if e.workDir != "" {
		if err := os.MkdirAll(e.workDir, 0o755); err != nil {
			return "", nil, err
		}
		return e.workDir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "reservoir-bench-"+e.scenario+"-")
	if err != nil {
		return "", nil, err
	}
	return d, func() {
		if e.keep {
			e.logf("work directory kept: %s", d)
			return
		}
		os.RemoveAll(d)
	}, nil
}

// logf prints a progress line on stderr.
func (e *benchEnv) logf(format string, args ...any) {
	if !e.quiet {
		fmt.Fprintf(e.log, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// result prints one result line: the scenario, who was measured, the
// figures, and the machine.
func (e *benchEnv) result(who, figures string) {
	fmt.Fprintf(e.out, "%s %s: %s | %s\n", e.scenario, who, figures, machine())
}

// startProfile starts the CPU profile if asked; the returned func stops it.
func (e *benchEnv) startProfile() (func(), error) {
	if e.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(e.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the heap profile if asked.
func (e *benchEnv) writeHeapProfile() error {
	if e.memProfile == "" {
		return nil
	}
	f, err := os.Create(e.memProfile)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// machine describes the machine and the moment: cores, Go version, date,
// load average at the start of the line.
func machine() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s, %s, load %s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		time.Now().UTC().Format("2006-01-02T15:04Z"), load)
}
