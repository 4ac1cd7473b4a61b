package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// relayFlags are the flags of the scenarios that run relays.
type relayFlags struct {
	reservoirBin  string
	indigoBin     string
	compareIndigo bool
	pgURL         string
	inProcess     bool
	archive       bool
}

func (r *relayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.reservoirBin, "reservoir-bin", "", "the reservoir binary to run (default: built from this module into the cache directory)")
	fs.StringVar(&r.indigoBin, "indigo-bin", "", "indigo's relay binary (default: bin/relay of the module, or relay on PATH; scripts/install-indigo-relay.sh installs it)")
	fs.BoolVar(&r.compareIndigo, "compare-indigo", false, "also run indigo's relay on the same stream, and print the ratio reservoir/indigo")
	fs.BoolVar(&r.archive, "archive", true, "the reservoir relay archives mirrored repositories (--archive=false: a lean relay, which stores no repository content, as indigo's relay)")
	fs.BoolVar(&r.inProcess, "in-process", false, "run the reservoir relay in this process (wired as `reservoir serve` wires it) instead of a child: --cpuprofile then profiles it, but its CPU and RSS include the fake host's and the consumers'")
	fs.StringVar(&r.pgURL, "pg-url", "postgres://127.0.0.1:5432/test?sslmode=disable", "PostgreSQL for indigo's relay: a fresh database is created (and dropped) beside this one")
}

// relayProc is a relay running as a child process.
type relayProc struct {
	name   string
	cmd    *exec.Cmd
	root   string // http://127.0.0.1:PORT
	exited chan struct{}
	logf   *os.File
	after  func() // cleanup after the process ended

	statsFn func() (procStats, error) // in-process relays: this process's
}

// wsRoot is the relay's websocket service root.
func (r *relayProc) wsRoot() string { return "ws" + strings.TrimPrefix(r.root, "http") }

func (r *relayProc) stats() (procStats, error) {
	if r.statsFn != nil {
		return r.statsFn()
	}
	return readProc(r.cmd.Process.Pid)
}

// stop ends the process (SIGTERM, then SIGKILL after 20 s).
func (r *relayProc) stop() {
	if r == nil {
		return
	}
	if r.cmd != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
		}
	}
	r.logf.Close()
	if r.after != nil {
		r.after()
	}
}

// startProc starts bin with args, its output in logPath.
func startProc(name, bin string, args []string, logPath string) (*relayProc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &relayProc{name: name, cmd: cmd, exited: make(chan struct{}), logf: lf}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

// reservoirBinary returns the reservoir binary: the flag's, or one built
// from this module into the cache directory.
func (e *benchEnv) reservoirBinary(ctx context.Context, rf *relayFlags) (string, error) {
	if rf.reservoirBin != "" {
		return rf.reservoirBin, nil
	}
	out := filepath.Join(e.cacheDir, "bin", "reservoir")
	e.logf("building reservoir into %s", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/reservoir-atproto/reservoir/cmd/reservoir")
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building reservoir (give --reservoir-bin): %w", err)
	}
	return out, nil
}

// reservoirStarter returns how to start the reservoir relay: in this
// process, or the child.
func (e *benchEnv) reservoirRelay(ctx context.Context, rf *relayFlags) (relayStarter, error) {
	if rf.inProcess {
		return inProcessStarter(!rf.archive), nil
	}
	bin, err := e.reservoirBinary(ctx, rf)
	if err != nil {
		return nil, err
	}
	return reservoirStarter(bin, !rf.archive), nil
}

// indigoBinary finds indigo's relay binary, installing it when it is not
// there (scripts/install-indigo-relay.sh).
func indigoBinary(rf *relayFlags) (string, error) {
	if p, err := findIndigoBinary(rf); err == nil {
		return p, nil
	}
	// Not there: install it (the pinned version, into bin/ of the module),
	// so that a comparison is one command on a fresh machine.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", errors.New("indigo's relay is not installed: run scripts/install-indigo-relay.sh (or give --indigo-bin)")
	}
	script := filepath.Join(strings.TrimSpace(string(out)), "scripts", "install-indigo-relay.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = os.Stderr
	path, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("installing indigo's relay with %s: %w (or give --indigo-bin)", script, err)
	}
	return strings.TrimSpace(string(path)), nil
}

// findIndigoBinary finds indigo's relay binary, or says how to install it.
func findIndigoBinary(rf *relayFlags) (string, error) {
	if rf.indigoBin != "" {
		return rf.indigoBin, nil
	}
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "relay")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("relay"); err == nil {
		return p, nil
	}
	return "", errors.New("indigo's relay is not installed: run scripts/install-indigo-relay.sh (or give --indigo-bin)")
}

const adminPassword = "bench"

// startReservoir runs `reservoir serve` as a relay on a fresh data
// directory, resolving DIDs through plcURL.
func startReservoir(ctx context.Context, bin, dir, plcURL string, lean bool) (*relayProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root := "http://" + addr
	p, err := startProc("reservoir", bin, []string{"serve", "--listen", addr, "--data", filepath.Join(dir, "data"),
		"--public-url", root, "--plc-url", plcURL, "--admin-password", adminPassword, "--crawl-auth", "admin",
		"--allow-insecure-hosts", "--archive=" + strconv.FormatBool(!lean)}, filepath.Join(dir, "reservoir.log"))
	if err != nil {
		return nil, err
	}
	p.root = root
	if err := waitHTTP(ctx, root+"/xrpc/_health", 60*time.Second, p.exited); err != nil {
		p.stop()
		return nil, fmt.Errorf("reservoir: %w (log: %s)", err, p.logf.Name())
	}
	return p, nil
}

// benchHostEventsPerSecond is the per-host event limit the bench sets on
// the fake host, as an admin would for a large PDS: the relay's default
// (1,000/s) would otherwise cap every scenario's rate.
const benchHostEventsPerSecond = 1_000_000

// crawl makes a reservoir relay crawl hostURL as an admin would for a big
// host: adds it (POST /admin/hosts), raises its event limit to
// benchHostEventsPerSecond (POST /admin/hosts/{hostname}/limits), then
// requests the crawl (admin requestCrawl).
func (r *relayProc) crawl(ctx context.Context, hostURL string) error {
	hostname := strings.TrimPrefix(strings.TrimPrefix(hostURL, "http://"), "https://")
	if err := r.adminPost(ctx, "/admin/hosts", map[string]any{"hostname": hostURL}); err != nil {
		return err
	}
	if err := r.adminPost(ctx, "/admin/hosts/"+hostname+"/limits", map[string]any{"eventsPerSecond": benchHostEventsPerSecond}); err != nil {
		return err
	}
	return r.adminPost(ctx, "/xrpc/com.atproto.sync.requestCrawl", map[string]any{"hostname": hostURL})
}

// adminPost posts a JSON body to the relay with admin auth and wants 200.
func (r *relayProc) adminPost(ctx context.Context, path string, in any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.root+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", adminPassword)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("POST %s answered %s: %s", path, resp.Status, b.String())
	}
	return nil
}

// startIndigo runs indigo's relay on a fresh PostgreSQL database, with the
// host row of hostname (127.0.0.1:PORT, no TLS) inserted before the
// subscribing start: its crawl check refuses loopback hosts.
func startIndigo(ctx context.Context, e *benchEnv, bin, dir, plcURL, pgURL, hostname string) (*relayProc, error) {
	if _, err := exec.LookPath("psql"); err != nil {
		return nil, errors.New("indigo's relay needs PostgreSQL and psql (the bench creates a fresh database)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dbName := fmt.Sprintf("reservoir_bench_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	psql := func(db, sql string) error {
		u := pgURL
		if db != "" {
			u = replaceDB(pgURL, db)
		}
		out, err := exec.CommandContext(ctx, "psql", u, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	if err := psql("", "create database "+dbName); err != nil {
		return nil, err
	}
	drop := func() { psql("", "drop database if exists "+dbName+" with (force)") }
	dbURL := replaceDB(pgURL, dbName)
	addr, err := freeAddr()
	if err != nil {
		drop()
		return nil, err
	}
	metrics, err := freeAddr()
	if err != nil {
		drop()
		return nil, err
	}
	args := []string{"--plc-host", plcURL, "--admin-password", adminPassword, "--log-level", "warn", "serve",
		"--allow-insecure-hosts", "--db-url", dbURL, "--persist-dir", filepath.Join(dir, "persist"),
		"--bind", addr, "--metrics-listen", metrics}
	start := func(logName string) (*relayProc, error) {
		p, err := startProc("indigo", bin, args, filepath.Join(dir, logName))
		if err != nil {
			return nil, err
		}
		p.root = "http://" + addr
		if err := waitHTTP(ctx, p.root+"/xrpc/_health", 60*time.Second, p.exited); err != nil {
			p.stop()
			return nil, fmt.Errorf("indigo: %w (log: %s)", err, p.logf.Name())
		}
		return p, nil
	}
	// First start: the relay creates its schema.
	p, err := start("indigo-migrate.log")
	if err != nil {
		drop()
		return nil, err
	}
	p.stop()
	// Limits: an untrusted host's per-second limit is 50 + account_limit/1000.
	if err := psql(dbName, `insert into host (created_at, updated_at, hostname, no_ssl, account_limit, trusted, status, last_seq, account_count)
		values (now(), now(), '`+hostname+`', true, 100000000, false, 'active', -1, 0)`); err != nil {
		drop()
		return nil, err
	}
	if p, err = start("indigo.log"); err != nil {
		drop()
		return nil, err
	}
	p.after = drop
	e.logf("indigo relay on %s, database %s", p.root, dbName)
	return p, nil
}

// replaceDB returns a postgres URL naming database db.
func replaceDB(pgURL, db string) string {
	base, query, _ := strings.Cut(pgURL, "?")
	if i := strings.LastIndexByte(base, '/'); i > len("postgres://") {
		base = base[:i]
	}
	if query != "" {
		return base + "/" + db + "?" + query
	}
	return base + "/" + db
}
