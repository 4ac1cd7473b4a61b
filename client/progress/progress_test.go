package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestLines(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	m := New(&out, Options{Label: "export did:plc:abc", Items: "records", Now: clock.now})
	clock.t = clock.t.Add(2 * time.Second)
	m.AddBytes(3 << 20)
	m.AddItems(1500)
	if got, want := m.Line(), "export did:plc:abc: 3.0 MiB, 1,500 records, 1.5 MiB/s"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	// With totals: a quarter done in 2s leaves 6s.
	m.SetTotals(12<<20, 0)
	if got, want := m.Line(), "export did:plc:abc: 3.0 MiB of 12.0 MiB, 1,500 records, 1.5 MiB/s, 25% ETA 0:06"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	m.SetNote("seq 42")
	m.Print()
	m.Stop()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "seq 42") || lines[1] != "export did:plc:abc: 3.0 MiB of 12.0 MiB, 1,500 records, 1.5 MiB/s, 25%, in 0:02, seq 42" {
		t.Errorf("log lines %q", lines)
	}
}

func TestTerminalRedraws(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	m := New(&out, Options{Label: "blobs", Items: "blobs", Terminal: true, Now: clock.now})
	m.SetTotals(0, 4)
	clock.t = clock.t.Add(time.Second)
	m.AddItems(1)
	m.Print()
	m.AddItems(3)
	m.Stop()
	want := "\rblobs: 1 of 4 blobs, 1 blobs/s, 25% ETA 0:03\x1b[K" + "\rblobs: 4 of 4 blobs, 4 blobs/s, 100%, in 0:01\x1b[K\n"
	if out.String() != want {
		t.Errorf("terminal output %q, want %q", out.String(), want)
	}
}

func TestStartPrintsPeriodically(t *testing.T) {
	var out bytes.Buffer // written by the Meter's goroutine, read after Stop
	m := New(&out, Options{Label: "x", Items: "events", Interval: 5 * time.Millisecond})
	m.Start()
	w := m.Writer(io.Discard)
	for range 10 {
		w.Write([]byte("abcd"))
		m.AddItems(1)
		time.Sleep(3 * time.Millisecond)
	}
	m.Stop()
	if n := strings.Count(out.String(), "\n"); n < 2 {
		t.Errorf("%d lines in %q", n, out.String())
	}
	if !strings.Contains(out.String(), "40 B, 10 events") {
		t.Errorf("final counts missing: %q", out.String())
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := FormatCount(n); got != want {
			t.Errorf("FormatCount(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0:00", 61 * time.Second: "1:01", 3723 * time.Second: "1:02:03"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
