package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// counter follows a relay's firehose live and counts its frames: the
// #commit frames re-broadcast, and every frame.
type counter struct {
	conn    *websocket.Conn
	commits atomic.Int64
	frames  atomic.Int64
	bytes   atomic.Int64
	done    chan struct{}
	err     atomic.Pointer[error]
}

var commitHeader = []byte("\x67#commit") // the header's t: text of 7 bytes

// isCommit tells a #commit frame by its header, whichever order its two
// keys come in.
func isCommit(frame []byte) bool {
	return bytes.Contains(frame[:min(len(frame), 24)], commitHeader)
}

// subscribeCount connects to a firehose (a ws:// service root) and counts
// frames until ctx ends or the connection fails; readBuf is the
// websocket read buffer.
func subscribeCount(ctx context.Context, wsRoot string, readBuf int) (*counter, error) {
	d := websocket.Dialer{ReadBufferSize: readBuf, WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, wsRoot+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", wsRoot, err)
	}
	resp.Body.Close()
	c := &counter{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var buf [32]byte
		for {
			_, r, err := conn.NextReader()
			if err != nil {
				if ctx.Err() == nil {
					c.err.Store(&err)
				}
				return
			}
			n, _ := io.ReadFull(r, buf[:])
			if isCommit(buf[:n]) {
				c.commits.Add(1)
			}
			m, _ := io.Copy(io.Discard, r)
			c.frames.Add(1)
			c.bytes.Add(int64(n) + m)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-c.done:
		}
		conn.Close()
	}()
	return c, nil
}

// Err is why the subscription ended, if it did.
func (c *counter) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// waitCommits waits until n commits were counted; it fails when the count
// stalls for stall, or the subscription ends.
func (c *counter) waitCommits(ctx context.Context, n int64, stall time.Duration, progress func(int64)) error {
	last, lastChange := c.commits.Load(), time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	nextLog := time.Now().Add(5 * time.Second)
	for {
		got := c.commits.Load()
		if got >= n {
			return nil
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		if time.Since(lastChange) > stall {
			return fmt.Errorf("%d of %d commits re-broadcast; none for %v", got, n, stall)
		}
		if progress != nil && time.Now().After(nextLog) {
			progress(got)
			nextLog = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			if c.commits.Load() >= n {
				return nil
			}
			return fmt.Errorf("the relay's firehose ended after %d of %d commits: %v", c.commits.Load(), n, c.Err())
		case <-t.C:
		}
	}
}

// waitHTTP waits until url answers 2xx.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v (last: %v)", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("the process exited before %s answered", url)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
