package relay_test

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
)

// scriptedFirehose is an upstream's subscribeRepos serving frames a test
// appends, crafted or real, in order: a connection with cursor c gets the
// frames with a seq above c, then follows as more are appended. A frame
// marked once (garbage, an oversize frame: the relay drops the connection
// on it and reconnects after the last seq it took) is sent to one
// connection only, so the script goes on after it.
type scriptedFirehose struct {
	mu     sync.Mutex
	frames []scripted
	wake   chan struct{}
	conns  int // connections so far
	open   int // connections open
}

type scripted struct {
	seq   int64 // a once frame: the seq of the frame before it
	bytes []byte
	once  bool
	sent  bool
}

func newScriptedFirehose() *scriptedFirehose {
	return &scriptedFirehose{wake: make(chan struct{})}
}

// add appends frames with their seqs.
func (s *scriptedFirehose) add(fs ...frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		s.frames = append(s.frames, scripted{seq: f.seq, bytes: f.bytes})
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// addOnce appends a frame sent to one connection only, after the frames
// added so far.
func (s *scriptedFirehose) addOnce(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seq int64
	if n := len(s.frames); n > 0 {
		seq = s.frames[n-1].seq
	}
	s.frames = append(s.frames, scripted{seq: seq, bytes: b, once: true})
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *scriptedFirehose) stats() (conns, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.open
}

var scriptUpgrader = websocket.Upgrader{}

func (s *scriptedFirehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cursor := int64(-1)
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			http.Error(w, "bad cursor", http.StatusBadRequest)
			return
		}
		cursor = n
	}
	c, err := scriptUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	gone := make(chan struct{})
	go func() { // read (pings, the close) until the client leaves
		defer close(gone)
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	s.mu.Lock()
	s.conns++
	s.open++
	next := len(s.frames) // no cursor: live
	if cursor >= 0 {
		next = 0
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var out [][]byte
		for ; next < len(s.frames); next++ {
			f := &s.frames[next]
			switch {
			case f.once && f.sent:
			case f.once && f.seq >= cursor:
				f.sent = true
				out = append(out, f.bytes)
			case !f.once && f.seq > cursor:
				out = append(out, f.bytes)
			}
		}
		wake := s.wake
		s.mu.Unlock()
		for _, b := range out {
			if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
				return
			}
		}
		select {
		case <-wake:
		case <-gone:
			return
		}
	}
}
