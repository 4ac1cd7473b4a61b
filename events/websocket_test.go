package events

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reservoir-atproto/reservoir/dagcbor"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// value reads a counter or gauge (-1 if it cannot).
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// withMetrics gives a log config metrics on a fresh registry.
func withMetrics(t *testing.T, cfg logConfig) (logConfig, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ring.Metrics, cfg.fh.Metrics = m, m
	return cfg, m
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func disconnects(m *Metrics, reason string) float64 {
	return value(m.disconnects.WithLabelValues(reason))
}

func TestWebsocketReplayThenLive(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{ring: RingOptions{MaxEvents: 20}, fh: Options{BatchFrames: 8}})
	l := newTestLog(t, cfg)
	uid := l.account("did:plc:ws")
	for range 10 {
		l.emitSized(uid, "did:plc:ws", 5, 300)
	}
	srv := l.server()
	replay := dial(t, srv, "0")
	live := dial(t, srv, "")
	waitFor(t, "two subscribers", func() bool { return l.fh.Subscribers() == 2 })

	want := l.stored(0)
	got := readFrames(t, replay, len(want))
	for i, f := range got {
		if !bytes.Equal(f, want[i].frame) {
			t.Fatalf("frame %d is not the stored bytes of seq %d", i, want[i].seq)
		}
		h, _ := decodeFrame(t, f, want[i].seq)
		if h["t"] != "#identity" || h["op"] != int64(1) {
			t.Fatalf("header %v", h)
		}
	}
	// Live: both get the new events, the live one nothing older.
	seqs := l.emit(uid, "did:plc:ws", 3)
	newer := l.stored(seqs[0] - 1)
	for name, c := range map[string]*websocket.Conn{"replay": replay, "live": live} {
		for i, f := range readFrames(t, c, len(newer)) {
			if !bytes.Equal(f, newer[i].frame) {
				t.Fatalf("%s: live frame %d differs from seq %d", name, i, newer[i].seq)
			}
		}
	}
	if value(m.fromStore) == 0 || value(m.fromRing) == 0 {
		t.Errorf("frames by source: store %v ring %v; the replay should have used both",
			value(m.fromStore), value(m.fromRing))
	}
	if got := value(m.events[wire.TypeIdentity]); got != float64(len(want)+3) {
		t.Errorf("firehose_events_total{identity} = %v, want %d", got, len(want)+3)
	}
	if got := value(m.subscribers); got != 2 {
		t.Errorf("subscribers gauge %v", got)
	}
	replay.Close()
	live.Close()
	waitFor(t, "subscribers to leave", func() bool { return l.fh.Subscribers() == 0 })
	if got := disconnects(m, ReasonClientGone); got != 2 {
		t.Errorf("client_gone disconnects %v, want 2", got)
	}
	if got := value(m.subscribers); got != 0 {
		t.Errorf("subscribers gauge %v after they left", got)
	}
}

func TestWebsocketFutureCursor(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{})
	l := newTestLog(t, cfg)
	l.account("did:plc:f") // seq 1
	c := dial(t, l.server(), "2")
	msg := readFrames(t, c, 1)[0]
	h, b := decodeFrame(t, msg, 0)
	if h["op"] != int64(-1) || len(h) != 1 {
		t.Fatalf("header %v, want {op: -1}", h)
	}
	if b["error"] != "FutureCursor" || b["message"] != "Cursor in the future." {
		t.Fatalf("body %v", b)
	}
	if code, text := closeCode(t, c); code != 1008 || text != "FutureCursor" {
		t.Fatalf("close %d %q, want 1008 FutureCursor", code, text)
	}
	waitFor(t, "the disconnect count", func() bool { return disconnects(m, ReasonFutureCursor) == 1 })
}

func TestWebsocketOutdatedCursor(t *testing.T) {
	l := newTestLog(t, logConfig{window: time.Hour})
	uid := l.account("did:plc:o")
	l.emit(uid, "did:plc:o", 4) // 1..5
	l.clock.Advance(2 * time.Hour)
	l.emit(uid, "did:plc:o", 2) // 6, 7
	if err := l.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l.server(), "2")
	frames := readFrames(t, c, 3)
	h, b := decodeFrame(t, frames[0], 0)
	if h["t"] != "#info" || b["name"] != "OutdatedCursor" {
		t.Fatalf("first frame %v %v", h, b)
	}
	if seqOf(t, frames[1]) != 6 || seqOf(t, frames[2]) != 7 {
		t.Fatalf("after the info: seqs %d, %d; want 6, 7", seqOf(t, frames[1]), seqOf(t, frames[2]))
	}
}

func TestWebsocketIgnoresClientFramesAndAnswersPings(t *testing.T) {
	l := newTestLog(t, logConfig{})
	uid := l.account("did:plc:chatty")
	c := dial(t, l.server(), "0")
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, bytes.Repeat([]byte{0xff}, 100_000)}, {websocket.TextMessage, nil}} {
		if err := c.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	l.emit(uid, "did:plc:chatty", 2)
	// Reading is what handles the pong: keep reading.
	msgs := make(chan []byte, 10)
	go func() {
		defer close(msgs)
		for {
			_, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	for i := range 3 {
		select {
		case m := <-msgs:
			if seqOf(t, m) != int64(i+1) {
				t.Fatalf("frame %d has seq %d", i, seqOf(t, m))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d did not come", i)
		}
	}
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
}

func TestWebsocketPingsAndIdleTimeout(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{fh: Options{PingInterval: 50 * time.Millisecond, IdleTimeout: time.Second}})
	l := newTestLog(t, cfg)
	srv := l.server()
	// A client that reads answers the pings (gorilla does, while reading)
	// and stays well past the idle timeout.
	reader := dial(t, srv, "")
	pings := make(chan struct{}, 100)
	reader.SetPingHandler(func(s string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return reader.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := reader.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// A client that never reads never answers: it is dropped.
	dial(t, srv, "")
	waitFor(t, "the silent client to be dropped", func() bool { return disconnects(m, ReasonIdle) == 1 })
	time.Sleep(time.Second)
	if n := l.fh.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers, want the reading one", n)
	}
	if len(pings) < 5 {
		t.Fatalf("%d pings in over 2 s at one per 50 ms", len(pings))
	}
}

func TestWebsocketClientClose(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{})
	l := newTestLog(t, cfg)
	c := dial(t, l.server(), "")
	waitFor(t, "the subscriber", func() bool { return l.fh.Subscribers() == 1 })
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, _ := closeCode(t, c); code != 1000 {
		t.Fatalf("close reply %d, want 1000", code)
	}
	waitFor(t, "the disconnect", func() bool { return disconnects(m, ReasonClientClosed) == 1 && l.fh.Subscribers() == 0 })
}

func TestWebsocketShutdownClosesSubscribers(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{})
	l := newTestLog(t, cfg)
	uid := l.account("did:plc:s")
	srv := l.server()
	var cs []*websocket.Conn
	for _, cursor := range []string{"", "0", "1"} {
		cs = append(cs, dial(t, srv, cursor))
	}
	waitFor(t, "three subscribers", func() bool { return l.fh.Subscribers() == 3 })
	l.emit(uid, "did:plc:s", 1)
	done := make(chan struct{})
	go func() { l.fh.Close(); close(done) }()
	for i, c := range cs {
		if code, _ := closeCode(t, c); code != 1001 {
			t.Fatalf("subscriber %d: close %d, want 1001", i, code)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if got := disconnects(m, ReasonShutdown); got != 3 {
		t.Fatalf("shutdown disconnects %v", got)
	}
	// Refused once closed, before any upgrade.
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	if _, resp, err := websocket.DefaultDialer.Dial(u, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %v %v", resp, err)
	}
}

func TestWebsocketMaxSubscribers(t *testing.T) {
	l := newTestLog(t, logConfig{fh: Options{MaxSubscribers: 2}})
	srv := l.server()
	dial(t, srv, "")
	dial(t, srv, "")
	waitFor(t, "two subscribers", func() bool { return l.fh.Subscribers() == 2 })
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	_, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third subscriber: %v %v", resp, err)
	}
}

// TestWebsocketBlockedSocketIsConsumerTooSlow: a client that stops reading
// fills the socket; after the write timeout it is dropped. When it reads
// again (within the final grace) it finds whole frames in order, then the
// ConsumerTooSlow error frame and the close.
func TestWebsocketBlockedSocketIsConsumerTooSlow(t *testing.T) {
	// A long final grace: the wait below, for the server to give up, takes
	// far longer than the default grace on a loaded machine (under -race
	// with 16 busy processes, five runs of five closed before the client read).
	cfg, m := withMetrics(t, logConfig{fh: Options{WriteTimeout: 200 * time.Millisecond, finalGrace: time.Minute}})
	l := newTestLog(t, cfg)
	uid := l.account("did:plc:blocked")
	c := dial(t, l.server(), "0")
	for range 40 {
		l.emitSized(uid, "did:plc:blocked", 10, 60_000) // 24 MB in all
	}
	// The server's writes block; wait until nothing has been sent for
	// well over the write timeout (it gave up, and is in its final grace).
	sent := value(m.fromStore) + value(m.fromRing)
	for still := 0; still < 6; {
		time.Sleep(100 * time.Millisecond)
		if now := value(m.fromStore) + value(m.fromRing); now != sent {
			sent, still = now, 0
		} else {
			still++
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var last int64
	var end map[string]any
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != 1008 {
				t.Fatalf("after seq %d: %v, want close 1008", last, err)
			}
			break
		}
		h, b := decodeFrame(t, msg, -1)
		if h["op"] == int64(-1) {
			end = b
			continue
		}
		if end != nil {
			t.Fatal("a frame after the error frame")
		}
		seq := b["seq"].(int64)
		if seq != last+1 {
			t.Fatalf("seq %d after %d", seq, last)
		}
		last = seq
	}
	if end == nil || end["error"] != "ConsumerTooSlow" {
		t.Fatalf("last frame %v, want the ConsumerTooSlow error", end)
	}
	if last >= l.db.LastSeq() {
		t.Fatalf("the client got everything (%d): the socket never blocked", last)
	}
	waitFor(t, "the count", func() bool { return disconnects(m, ReasonWriteTimeout) == 1 })
}

// readUntil reads frames until the one with seq last, checking that seqs
// strictly increase without a gap from the first one read.
func readUntil(t *testing.T, c *websocket.Conn, last int64, slow bool) []logged {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var got []logged
	for n := 0; len(got) == 0 || got[len(got)-1].seq < last; n++ {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(got), err)
		}
		seq := seqOf(t, msg)
		if len(got) > 0 && seq != got[len(got)-1].seq+1 {
			t.Fatalf("seq %d after %d", seq, got[len(got)-1].seq)
		}
		got = append(got, logged{seq, msg})
		if slow && n%200 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return got
}

// TestWebsocketConcurrentWriters: consumers over real sockets (from 0,
// live, from the middle, and a slow one) while eight writers commit to
// their repositories: every consumer gets the store's frames, in order,
// without gap or duplicate.
func TestWebsocketConcurrentWriters(t *testing.T) {
	l := newTestLog(t, logConfig{ring: RingOptions{MaxEvents: 300}, fh: Options{BatchFrames: 32}})
	const writers, changes = 8, 150
	uids := make([]uint64, writers)
	for i := range uids {
		uids[i] = l.account("did:plc:cw" + string(rune('a'+i)))
	}
	srv := l.server()
	conns := map[string]*websocket.Conn{"from 0": dial(t, srv, "0"), "live": dial(t, srv, ""), "slow": dial(t, srv, "0")}
	waitFor(t, "subscribers", func() bool { return l.fh.Subscribers() == 3 })
	done := make(chan struct{})
	mid := make(chan int64, 1) // the seq mid-way through the writes
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range changes {
				l.emitSized(uids[w], "did:plc:cw"+string(rune('a'+w)), 1+i%3, (i*37)%500)
				if w == 0 && i == changes/2 {
					mid <- l.db.LastSeq() // the test dials from there
				}
			}
		}()
	}
	conns["mid-way"] = dial(t, srv, strconv.FormatInt(<-mid, 10))
	for range writers {
		<-done
	}
	last := l.db.LastSeq()
	all := l.stored(0)
	type res struct {
		name string
		got  []logged
	}
	out := make(chan res, len(conns))
	for name, c := range conns {
		go func() { out <- res{name, readUntilOrNil(c, last, name == "slow")} }()
	}
	for range conns {
		r := <-out
		if r.got == nil {
			t.Fatalf("%s: read failed", r.name)
		}
		first := r.got[0].seq
		if r.name == "from 0" || r.name == "slow" {
			if first != 1 {
				t.Fatalf("%s starts at %d", r.name, first)
			}
		}
		sameLog(t, r.name, r.got, all[first-1:])
	}
}

// readUntilOrNil is readUntil for a goroutine other than the test's: nil
// on any failure (the caller fails the test).
func readUntilOrNil(c *websocket.Conn, last int64, slow bool) []logged {
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var got []logged
	for n := 0; len(got) == 0 || got[len(got)-1].seq < last; n++ {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return nil
		}
		d := dagcbor.NewDecoder(msg)
		if d.Skip() != nil {
			return nil
		}
		v, err := d.ReadValue()
		m, _ := v.(map[string]any)
		seq, ok := m["seq"].(int64)
		if err != nil || !ok || (len(got) > 0 && seq != got[len(got)-1].seq+1) {
			return nil
		}
		got = append(got, logged{seq, msg})
		if slow && n%100 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return got
}

// TestWebsocketSlowConsumerIsNotDropped: 20,000 events past a 100-event
// ring while a consumer reads slowly: it gets all of them, in order.
func TestWebsocketSlowConsumerIsNotDropped(t *testing.T) {
	cfg, m := withMetrics(t, logConfig{ring: RingOptions{MaxEvents: 100}})
	l := newTestLog(t, cfg)
	uid := l.account("did:plc:slowws")
	c := dial(t, l.server(), "0")
	for range 200 {
		l.emitSized(uid, "did:plc:slowws", 100, 1000) // 20 MB: more than the socket buffers hold
	}
	got := readUntil(t, c, 20_001, true)
	sameLog(t, "slow consumer", got, l.stored(0))
	if value(m.fromStore) == 0 {
		t.Error("the slow consumer never read the store")
	}
	for _, r := range []string{ReasonExpired, ReasonWriteTimeout, ReasonWriteError} {
		if n := disconnects(m, r); n != 0 {
			t.Errorf("%v %s disconnects", n, r)
		}
	}
}
