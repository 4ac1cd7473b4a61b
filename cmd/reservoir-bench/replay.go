package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// replayCommit returns a #commit frame encoder of about size bytes, with
// random block bytes (so the store's compression does not flatter reads).
func replayCommit(rng *rand.Rand, did string, size int) store.FrameEncoder {
	blocks := make([]byte, max(size-330, 1))
	for i := range blocks {
		blocks[i] = byte(rng.Uint32())
	}
	c := dagcbor.SumCBOR(blocks)
	ev := &wire.Commit{
		Repo: did, Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: c, PrevData: c, Blocks: blocks,
		Ops:  []repo.Op{{Action: repo.ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", CID: c}},
		Time: time.Now(),
	}
	return ev.AppendFrame
}

// openLog opens a store with a firehose over it.
func openLog(dir string) (*store.DB, *events.Firehose, error) {
	ring := events.NewRing(events.RingOptions{})
	db, err := store.Open(store.Options{Dir: dir, GCInterval: -1, EventWindow: 72 * time.Hour, OnCommit: ring.Publish})
	if err != nil {
		return nil, nil, err
	}
	fh, err := events.New(events.Options{Log: db, Ring: ring, EventWindow: 72 * time.Hour})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, fh, nil
}

func runReplay(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	n := fs.Int("events", 1_000_000, "events in the window, replayed from the first")
	size := fs.Int("frame-bytes", 450, "size of each #commit frame (random blocks)")
	accounts := fs.Int("accounts", 100, "accounts the events belong to")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench replay [flags]\n\nCatch-up replay (P3): a store holding --events #commit frames is reopened (an empty ring, as\nafter a restart) and one websocket consumer reads them all from cursor 0 over loopback.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	work, cleanup, err := e.work()
	if err != nil {
		return err
	}
	defer cleanup()
	dir := filepath.Join(work, "store")
	db, fh, err := openLog(dir)
	if err != nil {
		return err
	}
	e.logf("writing %d events of %d bytes", *n, *size)
	rng := rand.New(rand.NewPCG(1, 2))
	uids := make([]uint64, *accounts)
	dids := make([]string, *accounts)
	for i := range uids {
		dids[i] = fmt.Sprintf("did:plc:replaybench%013d", i)
		res, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: dids[i], CreatedAt: time.Now()}})
		if err != nil {
			return err
		}
		uids[i] = res.UID
	}
	for done := 0; done < *n; {
		i := rng.IntN(*accounts)
		c := &store.Change{UID: uids[i]}
		for range min(1000, *n-done) {
			c.Events = append(c.Events, replayCommit(rng, dids[i], *size))
		}
		if _, err := db.Apply(ctx, c); err != nil {
			return err
		}
		done += len(c.Events)
	}
	fh.Close()
	db.Close()
	if db, fh, err = openLog(dir); err != nil {
		return err
	}
	defer db.Close()
	defer fh.Close()
	last := db.LastSeq()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := events.ParseCursor(r.URL.Query().Get("cursor"))
		if err == nil {
			err = fh.ServeWebSocket(w, r, c)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	stopProfile, err := e.startProfile()
	if err != nil {
		return err
	}
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 256}
	start, cpu0 := time.Now(), selfCPU()
	conn, resp, err := d.DialContext(ctx, "ws://"+ln.Addr().String()+"/?cursor=0", nil)
	if err != nil {
		stopProfile()
		return err
	}
	resp.Body.Close()
	var frames, bytes int64
	for frames < last {
		_, r, err := conn.NextReader()
		if err != nil {
			stopProfile()
			return fmt.Errorf("after %d of %d frames: %w", frames, last, err)
		}
		m, _ := io.Copy(io.Discard, r)
		frames++
		bytes += m
	}
	elapsed, cpu := time.Since(start), selfCPU()-cpu0
	stopProfile()
	conn.Close()
	e.result("reservoir", fmt.Sprintf("%s events/s replayed to one consumer (%d events from cursor 0, %.0f MB, %.2f s, %.1f MB/s), %.2f cpu-µs/event (server and consumer)",
		thousands(float64(frames)/elapsed.Seconds()), frames, float64(bytes)/1e6, elapsed.Seconds(), float64(bytes)/1e6/elapsed.Seconds(),
		float64(cpu.Microseconds())/float64(frames)))
	return nil
}
