package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// Benchmarks (numbers in BENCHMARKS.md):
//
//	go test -run '^$' -bench 'Replay|Fanout|Publish' -benchtime 1x ./events
//
// BenchmarkReplay: one consumer catching up from 1M events back, read from
// the store (a fresh ring, as after a restart), in-process and over a
// loopback websocket. BenchmarkFanout: 500 websocket consumers in a child
// process at 2,000 events/s; frames/s delivered, server memory per
// consumer, latency from the committer to the consumer.

// commitLike returns a #commit frame encoder of about size bytes, with
// random block bytes (so the store's compression does not flatter reads).
func commitLike(rng *rand.Rand, did string, size int) store.FrameEncoder {
	blocks := make([]byte, max(size-330, 1))
	rng.Read(blocks)
	c := dagcbor.SumCBOR(blocks)
	ev := &wire.Commit{
		Repo: did, Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: c, PrevData: c, Blocks: blocks,
		Ops:  []repo.Op{{Action: repo.ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", CID: c}},
		Time: time.Now(),
	}
	return ev.AppendFrame
}

// populate writes n events of about size bytes across 100 accounts.
func populate(b *testing.B, l *testLog, n, size int) {
	b.Helper()
	rng := rand.New(rand.NewSource(1))
	const accounts = 100
	uids := make([]uint64, accounts)
	for i := range uids {
		uids[i] = l.account(fmt.Sprintf("did:plc:bench%04d", i))
	}
	for done := accounts; done < n; {
		i := rng.Intn(accounts)
		c := &store.Change{UID: uids[i]}
		for range min(1000, n-done) {
			c.Events = append(c.Events, commitLike(rng, fmt.Sprintf("did:plc:bench%04d", i), size))
		}
		if _, err := l.db.Apply(context.Background(), c); err != nil {
			b.Fatal(err)
		}
		done += len(c.Events)
	}
}

func BenchmarkReplay(b *testing.B) {
	events, size := 1_000_000, 450
	if v := os.Getenv("EVENTS_REPLAY_N"); v != "" {
		events, _ = strconv.Atoi(v)
	}
	dir := b.TempDir()
	l := newTestLog(b, logConfig{dir: dir})
	populate(b, l, events, size)
	l.close()
	// Reopen: the ring is empty, as after a restart; every event comes
	// from the store.
	l = newTestLog(b, logConfig{dir: dir})
	last := l.db.LastSeq()
	var total int64
	if err := l.db.Events(0, func(ev store.CommittedEvent) error { total += int64(len(ev.Frame)); return nil }); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events, %.1f MB of frames", last, float64(total)/1e6)

	b.Run("stream", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			s, err := l.fh.Open(AtSeq(0))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for s.Position() < last {
				frames, err := s.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				n += len(frames)
			}
			if int64(n) != last {
				b.Fatalf("%d events replayed, want %d", n, last)
			}
		}
		b.ReportMetric(float64(last)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("websocket", func(b *testing.B) {
		srv := l.server()
		b.SetBytes(total)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			c := dialBuffered(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?cursor=0")
			var n int64
			for n < last {
				_, r, err := c.NextReader()
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			c.Close()
		}
		b.ReportMetric(float64(last)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}

func dialBuffered(b testing.TB, url string) *websocket.Conn {
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 256}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return c
}

func BenchmarkPublish(b *testing.B) {
	r := NewRing(RingOptions{})
	rng := rand.New(rand.NewSource(1))
	var group []store.CommittedEvent
	size := 0
	for i := range 16 {
		f := commitLike(rng, "did:plc:pub", 450)(nil, int64(i+1))
		size += len(f)
		group = append(group, store.CommittedEvent{Seq: int64(i + 1), UID: 1, Frame: f})
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		for i := range group {
			seq++
			group[i].Seq = seq
		}
		r.Publish(group)
	}
}

// Fan-out: the server (this process) and the consumers (a child process
// running this test binary) share the machine but not a heap.

const fanoutChildEnv = "EVENTS_FANOUT_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(fanoutChildEnv); url != "" {
		os.Exit(fanoutChild(url))
	}
	os.Exit(m.Run())
}

// fanoutResult is what the child reports.
type fanoutResult struct {
	Frames  int64
	P50us   float64
	P99us   float64
	Max     float64
	Dropped int
}

// fanoutChild connects N consumers to url, reads until stdin closes, and
// prints a fanoutResult. Each frame's handle holds its encode time.
func fanoutChild(url string) int {
	n, _ := strconv.Atoi(os.Getenv("EVENTS_FANOUT_N"))
	var frames, dropped atomic.Int64
	var closing atomic.Bool
	const buckets = 200_000 // 10 µs each, up to 2 s
	var hist [buckets]atomic.Int64
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		d := websocket.Dialer{ReadBufferSize: 16 << 10, WriteBufferSize: 256}
		c, resp, err := d.Dial(url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		resp.Body.Close()
		conns[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			for {
				_, r, err := c.NextReader()
				if err == nil {
					buf, err = readAll(buf[:0], r)
				}
				msg := buf
				if err != nil {
					if !closing.Load() {
						dropped.Add(1)
					}
					return
				}
				frames.Add(1)
				// The handle "t<19 digits>.test" ends the frame.
				if len(msg) > 25 {
					if sent, err := strconv.ParseInt(string(msg[len(msg)-24:len(msg)-5]), 10, 64); err == nil {
						us := (time.Now().UnixNano() - sent) / 10_000
						hist[min(max(us, 0), buckets-1)].Add(1)
					}
				}
			}
		}()
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	closing.Store(true)
	for _, c := range conns {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.Close()
	}
	wg.Wait()
	var total int64
	for i := range hist {
		total += hist[i].Load()
	}
	pct := func(p float64) float64 {
		want := int64(p * float64(total))
		var acc int64
		for i := range hist {
			if acc += hist[i].Load(); acc >= want && acc > 0 {
				return float64(i) * 10
			}
		}
		return 0
	}
	res := fanoutResult{Frames: frames.Load(), P50us: pct(0.5), P99us: pct(0.99), Max: pct(1), Dropped: int(dropped.Load())}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return 0
}

// readAll is io.ReadAll into a reused buffer.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// memInUse returns the heap and stack bytes in use after a GC.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func BenchmarkFanout(b *testing.B) {
	consumers := 500
	if v := os.Getenv("EVENTS_FANOUT_N"); v != "" {
		consumers, _ = strconv.Atoi(v)
	}
	const rate, tick = 2000, 10 * time.Millisecond
	duration := 5 * time.Second

	l := newTestLog(b, logConfig{dir: b.TempDir()})
	uid := l.account("did:plc:fanout")
	srv := l.server()
	for b.Loop() {
		runtime.GC()
		baseHeap, baseStack := memInUse()
		baseRSS := rssBytes()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fanoutChildEnv+"=ws"+strings.TrimPrefix(srv.URL, "http")+"/", "EVENTS_FANOUT_N="+strconv.Itoa(consumers))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		if !out.Scan() || out.Text() != "ready" {
			b.Fatalf("child: %q", out.Text())
		}
		for l.fh.Subscribers() < consumers {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		idleHeap, idleStack := memInUse()
		idleRSS := rssBytes()

		// 2,000 events/s: every tick one change of perTick #identity
		// events whose handle carries the encode time.
		start := time.Now()
		t := time.NewTicker(tick)
		var written int64
		var midHeap, midStack, midRSS uint64
		for time.Since(start) < duration {
			<-t.C
			// Keep the rate even when a tick comes late.
			due := int64(time.Since(start).Seconds()*rate) - written
			if due <= 0 {
				continue
			}
			c := &store.Change{UID: uid}
			for range due {
				c.Events = append(c.Events, func(buf []byte, seq int64) []byte {
					h := fmt.Sprintf("t%019d.test", time.Now().UnixNano())
					return (&wire.Identity{DID: "did:plc:fanout", Handle: h, Time: time.Unix(0, 0)}).AppendFrame(buf, seq)
				})
			}
			if _, err := l.db.Apply(context.Background(), c); err != nil {
				b.Fatal(err)
			}
			written += due
			if midRSS == 0 && time.Since(start) > duration/2 {
				midHeap, midStack = memInUse()
				midRSS = rssBytes()
			}
		}
		t.Stop()
		elapsed := time.Since(start)
		want := written * int64(consumers)
		time.Sleep(200 * time.Millisecond) // the last frames in flight
		stdin.Close()
		if !out.Scan() {
			b.Fatal("child: no result")
		}
		var res fanoutResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			b.Fatalf("child result %q: %v", out.Text(), err)
		}
		_ = cmd.Wait()
		if res.Dropped > 0 || res.Frames < want {
			b.Errorf("consumers got %d of %d frames, %d dropped", res.Frames, want, res.Dropped)
		}
		b.ReportMetric(float64(res.Frames)/elapsed.Seconds(), "frames/s")
		b.ReportMetric(float64(written)/elapsed.Seconds(), "events/s")
		perConsumer := func(mid, base uint64) float64 { return float64(int64(mid)-int64(base)) / float64(consumers) / 1024 }
		b.ReportMetric(perConsumer(idleHeap+idleStack, baseHeap+baseStack), "idle-heap+stack-KiB/consumer")
		b.ReportMetric(perConsumer(idleRSS, baseRSS), "idle-rss-KiB/consumer")
		b.ReportMetric(perConsumer(midHeap, baseHeap), "heap-KiB/consumer")
		b.ReportMetric(perConsumer(midStack, baseStack), "stack-KiB/consumer")
		b.ReportMetric(perConsumer(midRSS, baseRSS), "rss-KiB/consumer")
		b.ReportMetric(res.P50us/1000, "p50-ms")
		b.ReportMetric(res.P99us/1000, "p99-ms")
		for l.fh.Subscribers() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
