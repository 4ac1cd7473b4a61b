package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/reservoir-atproto/reservoir/plc"
)

// httpError is an answer other than 200, with the message the client sees.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.msg) }

// handler is an HTTP handler that returns its failure instead of writing it.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle adapts h: a returned error is written as the reference
// directory writes errors, {"message": ...} with the status of its class,
// and logged; a panic becomes a 500 and is logged with its value.
//
//	*plc.ValidationError       400, its message
//	ErrConflict                409
//	*http.MaxBytesError        413
//	*httpError                 its status and message
//	anything else              500 "Internal Server Error" (the cause is only logged)
func (s *Server) handle(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.opts.Logger.Error("plc: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			}
		}()
		err := h(w, r)
		if err == nil {
			return
		}
		status, msg := classify(err)
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelError
		}
		s.opts.Logger.Log(r.Context(), level, "plc: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		writeMessage(w, status, msg)
	})
}

func classify(err error) (int, string) {
	var (
		he *httpError
		ve *plc.ValidationError
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Message()
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "Proposed prev does not match the most recent operation"
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request entity too large (%d bytes maximum)", mb.Limit)
	}
	return http.StatusInternalServerError, "Internal Server Error"
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	_ = writeJSON(w, status, "application/json; charset=utf-8", b)
}

func writeValue(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, contentType, b)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, b []byte) error {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
