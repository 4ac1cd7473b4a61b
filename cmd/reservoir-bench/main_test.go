package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce    sync.Once
	reservoirBin string
	buildErr     error
)

// reservoirBinary builds the reservoir binary once, with the test's own
// race setting, so that the packages compiled for the test are reused and
// only the command is compiled and linked. Only the child-process path
// needs it; the other relay scenarios run the relay in process.
func reservoirBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reservoir-bench-test-")
		if err != nil {
			buildErr = err
			return
		}
		testDirs = append(testDirs, dir)
		reservoirBin = filepath.Join(dir, "reservoir")
		args := []string{"build", "-o", reservoirBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/reservoir-atproto/reservoir/cmd/reservoir")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building reservoir: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return reservoirBin
}

var testDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range testDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// runScenario runs one scenario at a tiny size and returns its result
// lines.
func runScenario(t *testing.T, args ...string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--cache-dir", t.TempDir(), "--quiet")
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("reservoir-bench %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, args[0]+" ") || !strings.Contains(l, " cores, go1.") {
			t.Errorf("result line %q: want the scenario, the figures and the machine", l)
		}
	}
	return lines
}

func wantFigure(t *testing.T, line, figure string) {
	t.Helper()
	if !strings.Contains(line, figure) {
		t.Errorf("result line %q lacks %q", line, figure)
	}
}

// Every scenario runs end to end at a tiny size and prints one result line
// with its figure.
func TestScenariosSmoke(t *testing.T) {
	t.Run("ingest", func(t *testing.T) {
		l := runScenario(t, "ingest", "--accounts", "20", "--records", "3", "--commits", "100", "--reservoir-bin", reservoirBinary(t))
		if len(l) != 1 {
			t.Fatalf("%d result lines, want 1", len(l))
		}
		wantFigure(t, l[0], "commits/s verified (100 commits")
	})
	t.Run("ingest-in-process", func(t *testing.T) {
		l := runScenario(t, "ingest", "--accounts", "20", "--records", "3", "--commits", "100", "--in-process")
		wantFigure(t, l[0], "commits/s verified (100 commits")
	})
	t.Run("fanout", func(t *testing.T) {
		l := runScenario(t, "fanout", "--accounts", "20", "--commits", "400", "--consumers", "4", "--rate", "100", "--warmup", "300ms", "--duration", "700ms", "--in-process")
		wantFigure(t, l[0], "frames/s delivered to 4 consumers")
		wantFigure(t, l[0], "0 dropped")
	})
	t.Run("replay", func(t *testing.T) {
		l := runScenario(t, "replay", "--events", "3000", "--accounts", "5")
		wantFigure(t, l[0], "events/s replayed to one consumer (3000 events")
	})
	t.Run("getrepo", func(t *testing.T) {
		l := runScenario(t, "getrepo", "--records", "3000")
		wantFigure(t, l[0], "getRepo of 3,000 records")
	})
	t.Run("import", func(t *testing.T) {
		l := runScenario(t, "import", "--repos", "2", "--records", "1000")
		wantFigure(t, l[0], "records/s imported and verified (2 repos × 1000 records")
	})
	t.Run("rss", func(t *testing.T) {
		l := runScenario(t, "rss", "--accounts", "30", "--rate", "100", "--warmup", "200ms", "--duration", "1s", "--in-process")
		wantFigure(t, l[0], "with 30 archived accounts at 100 events/s")
	})
}

// The comparison with indigo's relay needs its binary (a 2-minute install,
// not done in CI) and PostgreSQL; without them it is skipped, which is not
// a pass of the comparison.
func TestIngestCompareIndigo(t *testing.T) {
	bin, err := findIndigoBinary(&relayFlags{})
	if err != nil {
		t.Skipf("comparison NOT run: %v", err)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("comparison NOT run: psql is not installed (indigo's relay runs on PostgreSQL here)")
	}
	if out, err := exec.Command("psql", "postgres://127.0.0.1:5432/test?sslmode=disable", "-c", "select 1").CombinedOutput(); err != nil {
		t.Skipf("comparison NOT run: PostgreSQL at 127.0.0.1:5432 does not answer: %v %s", err, out)
	}
	l := runScenario(t, "ingest", "--accounts", "20", "--records", "3", "--commits", "100", "--in-process", "--indigo-bin", bin, "--compare-indigo")
	if len(l) != 3 {
		t.Fatalf("%d result lines, want 3 (reservoir, indigo, ratio): %q", len(l), l)
	}
	wantFigure(t, l[1], "ingest indigo: ")
	wantFigure(t, l[2], "ingest reservoir/indigo: ")
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"nonesuch"}, &out, &errb); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"ingest", "--accounts"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"rss", "--compare-indigo"}, &out, &errb); code != 2 {
		t.Errorf("rss --compare-indigo: exit %d, want 2", code)
	}
}
