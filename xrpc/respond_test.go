package xrpc

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func TestWriteJSON(t *testing.T) {
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, http.StatusAccepted, map[string]string{"text": "<b>&</b>"})
	})
	if w.Code != 202 {
		t.Errorf("status %d", w.Code)
	}
	if got := w.Body.String(); got != `{"text":"<b>&</b>"}` {
		t.Errorf("body %s", got)
	}
	if w.Header().Get("Content-Type") != "application/json; charset=utf-8" || w.Header().Get("Content-Length") != "19" {
		t.Errorf("headers %v", w.Header())
	}
}

// A value that cannot be encoded leaves the response untouched, so the
// client gets a clean 500.
func TestWriteJSONEncodingError(t *testing.T) {
	log, logs := newLogger()
	w := runHandler(t, Options{Logger: log}, func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, map[string]float64{"x": math.NaN()})
	})
	wantError(t, w, 500, "InternalServerError")
	if !strings.Contains(logs.String(), "encoding JSON response") {
		t.Errorf("log %s", logs)
	}
}

func TestCARResponse(t *testing.T) {
	block := []byte{0xa1, 0x61, 0x61, 0x01} // {"a": 1}
	c := dagcbor.SumCBOR(block)
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		cw, err := CARResponse(w, c)
		if err != nil {
			return err
		}
		if err := cw.WriteBlock(c, block); err != nil {
			return err
		}
		return cw.Flush()
	})
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/vnd.ipld.car" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	roots, blocks, err := car.ReadAll(bytes.NewReader(w.Body.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equals(c) || !bytes.Equal(blocks[c], block) || len(blocks) != 1 {
		t.Errorf("roots %v, blocks %v", roots, blocks)
	}
}

// An error before the CAR writer's buffer is flushed still becomes a JSON
// error: nothing of the CAR went out.
func TestCARResponseErrorBeforeFlush(t *testing.T) {
	c := dagcbor.SumCBOR([]byte{0xa0})
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		cw, err := CARResponse(w, c)
		if err != nil {
			return err
		}
		if err := cw.WriteBlock(c, []byte{0xa0}); err != nil {
			return err
		}
		return BlockNotFound("bafyreimissing")
	})
	wantError(t, w, 404, "BlockNotFound")
}

func TestCARResponseNoRootsAndUndefinedRoot(t *testing.T) {
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		cw, err := CARResponse(w)
		if err != nil {
			return err
		}
		return cw.Flush()
	})
	roots, blocks, err := car.ReadAll(bytes.NewReader(w.Body.Bytes()), nil)
	if err != nil || len(roots) != 0 || len(blocks) != 0 {
		t.Errorf("zero-root CAR: %v %v %v", roots, blocks, err)
	}
	if _, err := CARResponse(nil, cid.Undef); !errors.Is(err, car.ErrUndefinedCID) {
		t.Errorf("undefined root: %v", err)
	}
}
