// Package progress reports the progress of long client work (downloading
// a repository or blobs, catching up on a firehose): bytes, items, rate and,
// when the totals are known, the percentage and time left.
//
// On a terminal a Meter redraws one status line in place ("\r", then the
// line, then erase-to-end-of-line) a few times a second; anywhere else it
// writes a plain log line every few seconds, so that redirected output
// stays readable. Callers count with AddBytes and AddItems (or through
// Writer) from any goroutine; the Meter's own goroutine prints.
//
//	m := progress.New(os.Stderr, progress.Options{Label: "export", Items: "records", Terminal: progress.IsTerminal(os.Stderr)})
//	m.Start()
//	io.Copy(m.Writer(file), body)
//	m.Stop()
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Options configure a Meter.
type Options struct {
	// Label starts every line ("export did:plc:...").
	Label string
	// Items names what AddItems counts ("records", "blobs", "events");
	// empty hides the count.
	Items string
	// Terminal redraws one line in place; otherwise log lines are written.
	Terminal bool
	// Interval between prints. Default 250ms on a terminal, 5s otherwise.
	Interval time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Meter counts and prints. Its counters are safe for concurrent use.
type Meter struct {
	w     io.Writer
	opts  Options
	start time.Time

	bytes, items           atomic.Int64
	totalBytes, totalItems atomic.Int64

	mu      sync.Mutex // guards note, printed and the writes to w
	note    string
	printed bool
	stop    chan struct{}
	done    chan struct{}
}

// New returns a Meter writing to w; call Start to print periodically.
func New(w io.Writer, opts Options) *Meter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
		if opts.Terminal {
			opts.Interval = 250 * time.Millisecond
		}
	}
	return &Meter{w: w, opts: opts, start: opts.Now()}
}

// AddBytes counts n more bytes.
func (m *Meter) AddBytes(n int64) { m.bytes.Add(n) }

// AddItems counts n more items.
func (m *Meter) AddItems(n int64) { m.items.Add(n) }

// SetTotals sets the expected totals (0: unknown), for the percentage and
// the time left.
func (m *Meter) SetTotals(bytes, items int64) {
	m.totalBytes.Store(bytes)
	m.totalItems.Store(items)
}

// SetNote sets free text shown at the end of the line ("seq 1234").
func (m *Meter) SetNote(s string) {
	m.mu.Lock()
	m.note = s
	m.mu.Unlock()
}

// Writer returns a writer that passes to w and counts the bytes.
func (m *Meter) Writer(w io.Writer) io.Writer { return &countingWriter{w: w, m: m} }

type countingWriter struct {
	w io.Writer
	m *Meter
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.m.AddBytes(int64(n))
	return n, err
}

// Start prints every Interval until Stop.
func (m *Meter) Start() {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.Print()
			}
		}
	}()
}

// Stop ends the periodic prints and prints the final line (ending the
// redrawn line on a terminal).
func (m *Meter) Stop() {
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop = nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	line := m.lineLocked(true)
	if m.opts.Terminal {
		fmt.Fprintf(m.w, "\r%s\x1b[K\n", line)
	} else {
		fmt.Fprintln(m.w, line)
	}
}

// Print writes the current line: redrawn in place on a terminal, as a new
// log line otherwise.
func (m *Meter) Print() {
	m.mu.Lock()
	defer m.mu.Unlock()
	line := m.lineLocked(false)
	if m.opts.Terminal {
		fmt.Fprintf(m.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(m.w, line)
	}
	m.printed = true
}

// Line is the current status line.
func (m *Meter) Line() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lineLocked(false)
}

func (m *Meter) lineLocked(final bool) string {
	elapsed := m.opts.Now().Sub(m.start)
	bytes, items := m.bytes.Load(), m.items.Load()
	tb, ti := m.totalBytes.Load(), m.totalItems.Load()
	var parts []string
	if bytes > 0 || tb > 0 {
		s := FormatBytes(bytes)
		if tb > 0 {
			s += " of " + FormatBytes(tb)
		}
		parts = append(parts, s)
	}
	if m.opts.Items != "" {
		s := FormatCount(items)
		if ti > 0 {
			s += " of " + FormatCount(ti)
		}
		parts = append(parts, s+" "+m.opts.Items)
	}
	secs := elapsed.Seconds()
	if secs > 0 {
		switch {
		case bytes > 0:
			parts = append(parts, FormatBytes(int64(float64(bytes)/secs))+"/s")
		case items > 0 && m.opts.Items != "":
			parts = append(parts, fmt.Sprintf("%.0f %s/s", float64(items)/secs, m.opts.Items))
		}
	}
	// Percentage and time left from whichever total is known (bytes first).
	done, total := bytes, tb
	if tb <= 0 {
		done, total = items, ti
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		s := fmt.Sprintf("%.0f%%", frac*100)
		if !final && frac > 0 && frac < 1 {
			left := time.Duration(float64(elapsed) * (1 - frac) / frac)
			s += " ETA " + FormatDuration(left)
		}
		parts = append(parts, s)
	}
	if final {
		parts = append(parts, "in "+FormatDuration(elapsed))
	}
	if m.note != "" {
		parts = append(parts, m.note)
	}
	return m.opts.Label + ": " + strings.Join(parts, ", ")
}

// FormatBytes writes n in binary units: "512 B", "3.2 KiB", "1.0 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 5; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// FormatCount writes n with thousands separators: "1,234,567".
func FormatCount(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatDuration writes d as "m:ss" or "h:mm:ss", rounded to the second.
func FormatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
