package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/client/progress"
)

var subscribeHelp = commandHelp{
	name:  "subscribe",
	usage: "subscribe [--cursor N] [--cursor-file FILE] [--collection NSID]... [--did DID]... [--types LIST] [--verify] [--limit N] URL",
	about: `Follows a host's or relay's firehose (com.atproto.sync.subscribeRepos) and
prints each event as one JSON line on standard output, in the atproto JSON
form ({"$link": ...} for CIDs), with the records of each #commit decoded:

  {"$type":"com.atproto.sync.subscribeRepos#commit","seq":42,"repo":"did:plc:...",
   "rev":"...","ops":[{"action":"create","path":"app.bsky.feed.post/...",
   "cid":{"$link":"bafy..."},"record":{"$type":"app.bsky.feed.post",...}}],...}

The connection is retried with backoff when it breaks, resuming after the
last event printed. Without a cursor the stream starts live; --cursor 0
replays everything the server keeps. --cursor-file keeps the last seq
printed in FILE (written atomically after every event) and resumes from it
on the next run, so that a stopped and restarted subscription neither loses
nor repeats an event (--cursor, when given, wins over the file).
--verify checks every #commit (signature, and the sync-1.1 proof that its
ops lead from the previous state) and #sync (signature) with keys resolved
through --plc-url; results appear as "verified" or "verifyError".
--collection keeps only the commits with ops in these collections, and only
those ops (other event types still pass: add --types commit to drop them);
--did keeps only events of these accounts; --types keeps only these event
types (commit, sync, identity, account, info). Filtered events still
advance the cursor. Status goes to standard error: a progress line on
a terminal, a log line every few seconds otherwise.
URL is the service root: https://, http://, wss:// or ws://.`,
	example: `  reservoir subscribe --cursor-file bsky.cursor --collection app.bsky.feed.post wss://bsky.network
  reservoir subscribe --cursor 0 --verify --limit 100 http://localhost:2480`,
}

// eventTypes are the --types values.
var eventTypes = []string{"commit", "sync", "identity", "account", "info"}

func runSubscribe(ctx context.Context, cio *cliIO, args []string) error {
	fs := newFlagSet(cio, subscribeHelp)
	cursorFlag := fs.String("cursor", "", "start after this seq (0: everything the server keeps; default: live, or the cursor file)")
	cursorFile := fs.String("cursor-file", "", "read the starting seq from FILE if it exists, and write the last seq printed to it")
	var collections, dids, types listFlag
	fs.Var(&collections, "collection", "keep commits with ops in this collection (NSID; repeat or comma-separate)")
	fs.Var(&dids, "did", "keep events of this account (repeat or comma-separate)")
	fs.Var(&types, "types", "keep these event types: "+strings.Join(eventTypes, ","))
	verify := fs.Bool("verify", false, "verify commits and syncs with the accounts' signing keys")
	lenient := fs.Bool("lenient", false, "with --verify, accept commits without prevData (pre-sync-1.1 hosts)")
	limit := fs.Int64("limit", 0, "stop after printing this many events (0: no limit)")
	noRecords := fs.Bool("no-records", false, "do not decode records into the ops")
	var ids identityFlags
	ids.register(fs, cio, false)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("subscribe takes one URL, got %d arguments", len(pos))
	}
	if _, err := client.ServiceURL(pos[0]); err != nil {
		return usagef("%v", err)
	}
	f, err := newEventFilter(collections, dids, types)
	if err != nil {
		return err
	}
	s := &client.Subscriber{
		URL: pos[0], Lenient: *lenient, SkipRecords: *noRecords, UserAgent: "reservoir/" + buildVersion(),
		Logger: slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	switch {
	case *cursorFlag != "":
		n, err := strconv.ParseInt(*cursorFlag, 10, 64)
		if err != nil || n < 0 {
			return usagef("--cursor must be a seq (a non-negative integer), not %q", *cursorFlag)
		}
		s.Cursor = &n
	case *cursorFile != "":
		n, ok, err := readCursorFile(*cursorFile)
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if ok {
			s.Cursor = &n
		}
	}
	if *verify {
		r, err := ids.resolver()
		if err != nil {
			return err
		}
		s.Keys = r
	}
	m := progress.New(cio.stderr, progress.Options{Label: "subscribe", Items: "events", Terminal: cio.terminal})
	m.Start()
	defer m.Stop()
	var printed int64
	errLimit := errors.New("limit reached")
	err = s.Run(ctx, func(ctx context.Context, ev client.Event) error {
		m.AddItems(1)
		if seq := client.Seq(ev); seq > 0 {
			m.SetNote(statusNote(seq, ev))
		}
		if e, ok := ev.(*client.ErrorFrame); ok {
			fmt.Fprintf(cio.stderr, "subscribe: the server sent %s: %s\n", e.Name, e.Message)
		}
		line, keep, err := f.line(ev)
		if err != nil {
			return err
		}
		if keep {
			if _, err := cio.stdout.Write(line); err != nil {
				return err
			}
			printed++
		}
		if seq := client.Seq(ev); seq > 0 && *cursorFile != "" {
			if err := writeCursorFile(*cursorFile, seq); err != nil {
				return fmt.Errorf("cursor file: %w", err)
			}
		}
		if *limit > 0 && printed >= *limit {
			return errLimit
		}
		return nil
	})
	switch {
	case errors.Is(err, errLimit), errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, client.ErrFutureCursor):
		return fmt.Errorf("subscribe: the server is behind the cursor (FutureCursor): %w", err)
	}
	return fmt.Errorf("subscribe: %w", err)
}

// statusNote is the progress note: the seq and how far behind real time
// the stream is.
func statusNote(seq int64, ev client.Event) string {
	note := "seq " + strconv.FormatInt(seq, 10)
	var ts string
	switch e := ev.(type) {
	case *client.Commit:
		ts = e.Time
	case *client.Sync:
		ts = e.Time
	case *client.Identity:
		ts = e.Time
	case *client.Account:
		ts = e.Time
	}
	if t, err := syntax.ParseDatetimeTime(ts); err == nil {
		if lag := time.Since(t); lag > 2*time.Second {
			note += ", " + progress.FormatDuration(lag) + " behind"
		}
	}
	return note
}

// readCursorFile reads a seq saved by writeCursorFile; ok is false when
// the file does not exist.
func readCursorFile(path string) (seq int64, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || seq < 0 {
		return 0, false, fmt.Errorf("%s does not hold a seq: %q", path, data)
	}
	return seq, true, nil
}

// writeCursorFile replaces the file's content with seq atomically: a new
// file renamed over the old one, so a reader (or a crash) sees the old
// seq or the new one, never a partial write.
func writeCursorFile(path string, seq int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(strconv.FormatInt(seq, 10) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// eventFilter applies --collection, --did and --types and writes the JSON
// line of the events kept.
type eventFilter struct {
	collections map[string]bool
	dids        map[string]bool
	types       map[string]bool
}

func newEventFilter(collections, dids, types []string) (*eventFilter, error) {
	f := &eventFilter{}
	set := func(vals []string, check func(string) error) (map[string]bool, error) {
		if len(vals) == 0 {
			return nil, nil
		}
		m := map[string]bool{}
		for _, v := range vals {
			if err := check(v); err != nil {
				return nil, err
			}
			m[v] = true
		}
		return m, nil
	}
	var err error
	if f.collections, err = set(collections, func(s string) error {
		if _, err := syntax.ParseNSID(s); err != nil {
			return usagef("--collection %q is not an NSID", s)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if f.dids, err = set(dids, func(s string) error { _, err := didArg(s); return err }); err != nil {
		return nil, err
	}
	if f.types, err = set(types, func(s string) error {
		if !slices.Contains(eventTypes, s) {
			return usagef("--types: unknown type %q (known: %s)", s, strings.Join(eventTypes, ","))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return f, nil
}

// Event lines: the lexicon's field names, CIDs as {"$link": ...}, the
// #commit blocks left out and the records added to the ops.
type (
	link struct {
		Link string `json:"$link"`
	}
	commitLine struct {
		Type        string   `json:"$type"`
		Seq         int64    `json:"seq"`
		Repo        string   `json:"repo"`
		Rev         string   `json:"rev"`
		Since       *string  `json:"since"`
		Commit      link     `json:"commit"`
		PrevData    *link    `json:"prevData,omitempty"`
		Ops         []opLine `json:"ops"`
		Time        string   `json:"time"`
		Verified    *bool    `json:"verified,omitempty"`
		VerifyError string   `json:"verifyError,omitempty"`
	}
	opLine struct {
		Action string          `json:"action"`
		Path   string          `json:"path"`
		CID    *link           `json:"cid"`
		Prev   *link           `json:"prev,omitempty"`
		Record json.RawMessage `json:"record,omitempty"`
	}
	syncLine struct {
		Type        string `json:"$type"`
		Seq         int64  `json:"seq"`
		DID         string `json:"did"`
		Rev         string `json:"rev"`
		Time        string `json:"time"`
		Commit      *link  `json:"commit,omitempty"`
		Verified    *bool  `json:"verified,omitempty"`
		VerifyError string `json:"verifyError,omitempty"`
	}
	identityLine struct {
		Type   string `json:"$type"`
		Seq    int64  `json:"seq"`
		DID    string `json:"did"`
		Handle string `json:"handle,omitempty"`
		Time   string `json:"time"`
	}
	accountLine struct {
		Type   string `json:"$type"`
		Seq    int64  `json:"seq"`
		DID    string `json:"did"`
		Active bool   `json:"active"`
		Status string `json:"status,omitempty"`
		Time   string `json:"time"`
	}
	infoLine struct {
		Type    string `json:"$type"`
		Name    string `json:"name"`
		Message string `json:"message,omitempty"`
	}
)

const subscribeNSID = "com.atproto.sync.subscribeRepos"

func linkOf(c cid.Cid) *link {
	if !c.Defined() {
		return nil
	}
	return &link{c.String()}
}

// verifiedFields fills verified / verifyError when verification ran.
func verifiedFields(verified bool, err error) (*bool, string) {
	if !verified && err == nil {
		return nil, ""
	}
	if err != nil {
		return &verified, err.Error()
	}
	return &verified, ""
}

// line returns the JSON line of ev, and whether the filters keep it.
func (f *eventFilter) line(ev client.Event) ([]byte, bool, error) {
	var v any
	var typ, did string
	switch e := ev.(type) {
	case *client.Commit:
		typ, did = "commit", string(e.Repo)
		l := commitLine{Type: subscribeNSID + "#commit", Seq: e.Seq, Repo: did, Rev: string(e.Rev), Commit: link{e.CommitCID.String()},
			PrevData: linkOf(e.PrevData), Time: e.Time, Ops: []opLine{}}
		if e.Since != "" {
			l.Since = &e.Since
		}
		l.Verified, l.VerifyError = verifiedFields(e.Verified, e.VerifyErr)
		for i := range e.Ops {
			op := &e.Ops[i]
			if f.collections != nil && !f.collections[op.Collection()] {
				continue
			}
			ol := opLine{Action: op.Action, Path: op.Path, CID: linkOf(op.CID), Prev: linkOf(op.Prev)}
			if op.Record != nil {
				js, err := op.JSON()
				if err != nil {
					return nil, false, fmt.Errorf("seq %d: record %s: %w", e.Seq, op.Path, err)
				}
				ol.Record = js
			}
			l.Ops = append(l.Ops, ol)
		}
		if f.collections != nil && len(l.Ops) == 0 {
			return nil, false, nil
		}
		v = l
	case *client.Sync:
		typ, did = "sync", string(e.DID)
		l := syncLine{Type: subscribeNSID + "#sync", Seq: e.Seq, DID: did, Rev: string(e.Rev), Time: e.Time, Commit: linkOf(e.CommitCID)}
		l.Verified, l.VerifyError = verifiedFields(e.Verified, e.VerifyErr)
		v = l
	case *client.Identity:
		typ, did = "identity", string(e.DID)
		v = identityLine{Type: subscribeNSID + "#identity", Seq: e.Seq, DID: did, Handle: e.Handle, Time: e.Time}
	case *client.Account:
		typ, did = "account", string(e.DID)
		v = accountLine{Type: subscribeNSID + "#account", Seq: e.Seq, DID: did, Active: e.Active, Status: e.Status, Time: e.Time}
	case *client.Info:
		typ = "info"
		v = infoLine{Type: subscribeNSID + "#info", Name: e.Name, Message: e.Message}
	default:
		return nil, false, nil // error frames go to stderr
	}
	if f.types != nil && !f.types[typ] {
		return nil, false, nil
	}
	if f.dids != nil && did != "" && !f.dids[did] {
		return nil, false, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false, err
	}
	return append(data, '\n'), true, nil
}
