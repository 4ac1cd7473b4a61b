package directory

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
)

// Options configure a Server. Store is required; the rest have defaults.
type Options struct {
	Store   Store
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now; tests move it to cross the recovery window
	Version string           // reported by /_health; "": "dev"

	MaxBodyBytes   int64 // POST body limit; 0: 100 KiB (as the reference)
	MaxExportCount int   // /export page size limit and default; 0: 1000
}

// EnsureDefaults fills in the zero fields.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 100 << 10
	}
	if o.MaxExportCount <= 0 {
		o.MaxExportCount = 1000
	}
}

// Server is the directory's HTTP handler.
type Server struct {
	opts  Options
	mux   *http.ServeMux
	locks keyedMutex
}

var _ http.Handler = (*Server)(nil)

// New returns a Server over opts.Store. The Server does not own the store:
// the caller closes it after the HTTP server has shut down.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("directory: Options.Store is required")
	}
	opts.EnsureDefaults()
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.Handle("GET /_health", s.handle(s.health))
	s.mux.Handle("GET /export", s.handle(s.export))
	s.mux.Handle("POST /{did}", s.handle(s.submit))
	s.mux.Handle("GET /{did}", s.handle(s.document))
	s.mux.Handle("GET /{did}/data", s.handle(s.data))
	s.mux.Handle("GET /{did}/log", s.handle(s.log))
	s.mux.Handle("GET /{did}/log/audit", s.handle(s.auditLog))
	s.mux.Handle("GET /{did}/log/last", s.handle(s.last))
	s.mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{status: http.StatusNotFound, msg: "Not found: " + r.Method + " " + r.URL.Path}
	}))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	return writeValue(w, "application/json; charset=utf-8", map[string]string{"version": s.opts.Version})
}

// submit is POST /{did}: validate the operation against the DID's log and
// append it. Writes of one DID are serialized; the store's LogLen check
// catches anything that slips past (another process on the same store).
func (s *Server) submit(w http.ResponseWriter, r *http.Request) error {
	did, err := syntax.ParseDID(r.PathValue("did"))
	if err != nil {
		return &httpError{status: http.StatusBadRequest, msg: "Invalid DID: " + err.Error()}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		return err
	}
	op, err := plc.ParseOp(body)
	if err != nil {
		return err
	}
	unlock := s.locks.lock(did.String())
	defer unlock()
	recs, err := s.opts.Store.Log(r.Context(), did)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	acc, err := plc.Validate(did, entries(recs), op, now)
	if err != nil {
		return err
	}
	rec, err := s.opts.Store.Append(r.Context(), Append{DID: did, Op: op, Nullify: acc.Nullified, LogLen: len(recs), Now: now})
	if err != nil {
		return err
	}
	s.opts.Logger.Info("plc: accepted operation", "did", did, "type", op.Type(), "cid", rec.CID, "seq", rec.Seq, "nullified", len(acc.Nullified))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = io.WriteString(w, "OK")
	return err
}

// activeLog returns the DID's records that are not nullified, or a 404.
func (s *Server) activeLog(r *http.Request) (syntax.DID, []Record, error) {
	raw := r.PathValue("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return "", nil, notRegistered(raw)
	}
	recs, err := s.opts.Store.Log(r.Context(), did)
	if err != nil {
		return "", nil, err
	}
	active := recs[:0]
	for _, rec := range recs {
		if !rec.Nullified {
			active = append(active, rec)
		}
	}
	if len(active) == 0 {
		return "", nil, notRegistered(raw)
	}
	return did, active, nil
}

func notRegistered(did string) error {
	return &httpError{status: http.StatusNotFound, msg: "DID not registered: " + did}
}

// currentData is the state after the last active operation, or a 404 if
// that is a tombstone.
func (s *Server) currentData(r *http.Request) (*plc.DocumentData, error) {
	did, active, err := s.activeLog(r)
	if err != nil {
		return nil, err
	}
	data := plc.Data(did, active[len(active)-1].Op)
	if data == nil {
		return nil, &httpError{status: http.StatusNotFound, msg: "DID not available: " + did.String()}
	}
	return data, nil
}

func (s *Server) document(w http.ResponseWriter, r *http.Request) error {
	data, err := s.currentData(r)
	if err != nil {
		return err
	}
	return writeValue(w, "application/did+ld+json", data.Document())
}

func (s *Server) data(w http.ResponseWriter, r *http.Request) error {
	data, err := s.currentData(r)
	if err != nil {
		return err
	}
	return writeValue(w, "application/json; charset=utf-8", data)
}

func (s *Server) log(w http.ResponseWriter, r *http.Request) error {
	_, active, err := s.activeLog(r)
	if err != nil {
		return err
	}
	b := []byte{'['}
	for i, rec := range active {
		if i > 0 {
			b = append(b, ',')
		}
		b = plc.AppendJSON(b, rec.Op)
	}
	return writeJSON(w, http.StatusOK, "application/json; charset=utf-8", append(b, ']'))
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) error {
	raw := r.PathValue("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return notRegistered(raw)
	}
	recs, err := s.opts.Store.Log(r.Context(), did)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return notRegistered(raw)
	}
	b := []byte{'['}
	for i, rec := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = rec.AppendJSON(b)
	}
	return writeJSON(w, http.StatusOK, "application/json; charset=utf-8", append(b, ']'))
}

func (s *Server) last(w http.ResponseWriter, r *http.Request) error {
	_, active, err := s.activeLog(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, "application/json; charset=utf-8", plc.AppendJSON(nil, active[len(active)-1].Op))
}

// export is GET /export?after=&count=: JSON lines in sequence order, at
// most count (default and maximum MaxExportCount). An integer after is a
// sequence number and selects the sequence form of the lines; a time, or
// no after at all, selects the legacy form, as the spec says.
func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	cursor, count, err := parseExportQuery(r, s.opts.MaxExportCount)
	if err != nil {
		return err
	}
	recs, err := s.opts.Store.Export(r.Context(), cursor, count)
	if err != nil {
		return err
	}
	var b []byte
	for i, rec := range recs {
		if i > 0 {
			b = append(b, '\n')
		}
		if cursor.ByTime {
			b = rec.AppendJSON(b)
		} else {
			b = appendIndexedOp(b, rec)
		}
	}
	return writeJSON(w, http.StatusOK, "application/jsonlines", b)
}

func parseExportQuery(r *http.Request, maxCount int) (Cursor, int, error) {
	q := r.URL.Query()
	count := maxCount
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return Cursor{}, 0, &httpError{status: http.StatusBadRequest, msg: "Invalid count parameter"}
		}
		count = min(n, maxCount)
	}
	after := q.Get("after")
	switch {
	case after == "":
		return Cursor{ByTime: true}, count, nil
	case strings.Trim(after, "0123456789") == "":
		seq, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return Cursor{}, 0, &httpError{status: http.StatusBadRequest, msg: "Invalid after parameter"}
		}
		return Cursor{Seq: seq}, count, nil
	}
	t, err := time.Parse(time.RFC3339Nano, after)
	if err != nil {
		return Cursor{}, 0, &httpError{status: http.StatusBadRequest, msg: "Invalid after parameter: want a sequence number or an RFC 3339 time"}
	}
	return Cursor{Time: t, ByTime: true}, count, nil
}

// appendIndexedOp writes the sequence form of an export line.
func appendIndexedOp(b []byte, rec Record) []byte {
	b = fmt.Appendf(b, `{"seq":%d,"type":"indexed_op","operation":`, rec.Seq)
	b = plc.AppendJSON(b, rec.Op)
	b = append(b, `,"did":`...)
	b = appendString(b, rec.DID.String())
	b = append(b, `,"cid":`...)
	b = appendString(b, rec.CID.String())
	b = append(b, `,"createdAt":`...)
	b = appendString(b, plc.FormatTime(rec.CreatedAt))
	return append(b, '}')
}

func entries(recs []Record) []plc.LogEntry {
	out := make([]plc.LogEntry, len(recs))
	for i, r := range recs {
		out[i] = r.LogEntry
	}
	return out
}
