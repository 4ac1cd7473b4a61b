package xrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
)

// Content types of XRPC bodies.
const (
	ContentTypeJSON = "application/json; charset=utf-8"
	ContentTypeCAR  = "application/vnd.ipld.car"
)

// WriteJSON writes v as JSON with the given status, Content-Type
// application/json; charset=utf-8 and Content-Length. v is encoded before
// anything is written, so an encoding error leaves the response untouched
// (and the adapter answers 500). HTML characters are not escaped.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("xrpc: encoding JSON response: %w", err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("xrpc: writing JSON response: %w", err)
	}
	return nil
}

// CARResponse sets Content-Type: application/vnd.ipld.car and returns a CAR
// writer with the given roots (none for getBlocks) over w. The writer
// buffers 64 KiB, so the status line is sent only when that fills or at
// Flush: an error returned before then still becomes a JSON error response.
// After it, the adapter can only cut the connection. Call Flush at the end.
func CARResponse(w http.ResponseWriter, roots ...cid.Cid) (*car.Writer, error) {
	cw, err := car.NewWriter(w, roots)
	if err != nil {
		return nil, fmt.Errorf("xrpc: CAR response: %w", err)
	}
	w.Header().Set("Content-Type", ContentTypeCAR)
	return cw, nil
}
