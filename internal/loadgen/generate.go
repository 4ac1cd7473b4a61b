package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// formatVersion names the layout and content rules of a generated stream;
// it is part of the cache key, so a change of generator invalidates the
// cached streams.
const formatVersion = 1

// Params are the parameters of a synthetic stream (the cache key).
type Params struct {
	Accounts     int   // accounts, each with a genesis commit
	FirstRecords int   // records of each genesis commit (1 profile, the rest by the mix)
	Commits      int   // continuing commits, one operation each, on random accounts
	Seed         int64 // seeds record contents, DIDs and the order of continuing commits
}

// Name is the cache directory name of the stream.
func (p Params) Name() string {
	return fmt.Sprintf("v%d-a%d-r%d-c%d-s%d", formatVersion, p.Accounts, p.FirstRecords, p.Commits, p.Seed)
}

func (p Params) check() error {
	if p.Accounts < 1 || p.FirstRecords < 1 || p.FirstRecords > repo.MaxCommitOps || p.Commits < 0 {
		return fmt.Errorf("loadgen: bad parameters %+v: want ≥ 1 account, 1..%d first records, ≥ 0 commits", p, repo.MaxCommitOps)
	}
	return nil
}

// Manifest describes a generated stream (manifest.json).
type Manifest struct {
	Params    Params         `json:"params"`
	Frames    int64          `json:"frames"`      // = Accounts + Commits; seqs 1..Frames
	First     int64          `json:"firstFrames"` // seqs 1..First are the genesis commits
	Bytes     int64          `json:"bytes"`       // of all frames
	Records   int64          `json:"records"`     // records created over the stream
	Ops       map[string]int `json:"ops"`         // operations of continuing commits by kind
	Generated time.Time      `json:"generated"`
	Took      string         `json:"took"`
}

// Files of a stream directory.
const (
	manifestFile = "manifest.json"
	framesFile   = "frames.bin"
	accountsFile = "accounts.txt"
)

// GenerateOptions tunes Generate.
type GenerateOptions struct {
	Workers  int                   // 0: GOMAXPROCS
	Progress func(done, total int) // called now and then with accounts done, if set
}

// Generate returns the stream of p under cacheDir, generating it first
// (on every core, into a temporary directory renamed when complete) unless
// a complete one is there already.
func Generate(ctx context.Context, cacheDir string, p Params, o GenerateOptions) (*Stream, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, p.Name())
	if _, err := os.Stat(filepath.Join(dir, manifestFile)); err == nil {
		return Open(dir)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, p.Name()+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := generate(ctx, tmp, p, o); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, manifestFile)); serr == nil {
			return Open(dir) // generated at the same time by another run
		}
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return Open(dir)
}

// built is one account's generated commits.
type built struct {
	index int
	did   string
	key   string // public key, multibase
	first *wire.Commit
	next  []*wire.Commit
	kinds [numKinds]int
	recs  int
	err   error
}

func generate(ctx context.Context, dir string, p Params, o GenerateOptions) error {
	start := time.Now()
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// The owner of each continuing commit, and each account's share.
	owner := make([]int32, p.Commits)
	perAccount := make([]int32, p.Accounts)
	rng := rand.New(rand.NewPCG(uint64(p.Seed), 0xC0FFEE))
	for j := range owner {
		a := rng.IntN(p.Accounts)
		owner[j] = int32(a)
		perAccount[a]++
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int, 4*workers)
	results := make(chan *built, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := buildAccount(p, i, int(perAccount[i]), start)
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range p.Accounts {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	ff, err := os.Create(filepath.Join(dir, framesFile))
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	defer ff.Close()
	af, err := os.Create(filepath.Join(dir, accountsFile))
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	defer af.Close()
	fw, aw := bufio.NewWriterSize(ff, 1<<20), bufio.NewWriterSize(af, 1<<16)
	m := Manifest{Params: p, Ops: map[string]int{}, Generated: start.UTC()}
	var buf []byte
	var seq int64
	emit := func(c *wire.Commit) error {
		seq++
		buf = c.AppendFrame(buf[:0], seq)
		var n [binary.MaxVarintLen64]byte
		if _, err := fw.Write(n[:binary.PutUvarint(n[:], uint64(len(buf)))]); err != nil {
			return err
		}
		m.Bytes += int64(len(buf))
		_, err := fw.Write(buf)
		return err
	}
	next := make([][]*wire.Commit, p.Accounts)
	done := 0
	for r := range results {
		if r.err != nil {
			return r.err
		}
		if err := emit(r.first); err != nil {
			return fmt.Errorf("loadgen: writing frames: %w", err)
		}
		fmt.Fprintf(aw, "%s %s\n", r.did, r.key)
		next[r.index] = r.next
		for k, n := range r.kinds {
			if n > 0 {
				m.Ops[Kind(k).String()] += n
			}
		}
		m.Records += int64(r.recs)
		if done++; o.Progress != nil && done%10_000 == 0 {
			o.Progress(done, p.Accounts)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if done != p.Accounts {
		return errors.New("loadgen: generation ended early")
	}
	m.First = seq
	for _, a := range owner {
		c := next[a][0]
		next[a] = next[a][1:]
		if err := emit(c); err != nil {
			return fmt.Errorf("loadgen: writing frames: %w", err)
		}
	}
	m.Frames = seq
	m.Took = time.Since(start).Round(time.Millisecond).String()
	if err := fw.Flush(); err != nil {
		return fmt.Errorf("loadgen: writing frames: %w", err)
	}
	if err := aw.Flush(); err != nil {
		return fmt.Errorf("loadgen: writing accounts: %w", err)
	}
	mb, _ := json.MarshalIndent(&m, "", "  ")
	return os.WriteFile(filepath.Join(dir, manifestFile), append(mb, '\n'), 0o644)
}

// buildAccount generates account i: a key, a genesis commit of
// p.FirstRecords records (a profile and the mix's creates), then n
// continuing commits of one operation each.
func buildAccount(p Params, i, n int, start time.Time) *built {
	r := &built{index: i}
	fail := func(err error) *built { r.err = fmt.Errorf("loadgen: account %d: %w", i, err); return r }
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return fail(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		return fail(err)
	}
	a := newAccountGen(p.Seed, i, start)
	r.did, r.key = a.did, pub.Multibase()
	opts := repo.CommitOptions{DID: syntax.DID(a.did), Key: key, Clock: repo.NewRevClock(a.clockID)}
	tree := mst.NewEmpty(mst.MemBlocks{})
	createdAt := func() string { return time.UnixMicro(a.micros).UTC().Format("2006-01-02T15:04:05.000Z") }
	ws := []repo.Write{a.write(KindProfile, createdAt())}
	for len(ws) < p.FirstRecords {
		k := DefaultMix.pick(a.rng)
		if k == KindDelete || k == KindProfile {
			continue
		}
		ws = append(ws, a.write(k, createdAt()))
	}
	r.recs = len(ws)
	res, err := repo.BuildCommit(tree, nil, ws, opts)
	if err != nil {
		return fail(err)
	}
	r.first = commitEvent(a.did, res)
	for range n {
		k := DefaultMix.pick(a.rng)
		w := a.write(k, createdAt())
		if w.Action == repo.ActionDelete {
			r.kinds[KindDelete]++
		} else {
			r.kinds[kindOf(w.Path)]++
			r.recs++
		}
		if res, err = repo.BuildCommit(tree, res.Commit, []repo.Write{w}, opts); err != nil {
			return fail(err)
		}
		r.next = append(r.next, commitEvent(a.did, res))
	}
	return r
}

func commitEvent(did string, r *repo.CommitResult) *wire.Commit {
	return &wire.Commit{Repo: did, Rev: string(r.Commit.Rev), Since: string(r.Since), Commit: r.CID, PrevData: r.PrevData, Blocks: r.Slice, Ops: r.Ops, Time: time.Now().UTC()}
}

// kindOf is the kind of a created or updated record's path.
func kindOf(path string) Kind {
	coll, _, _ := syntax.ParseRepoPath(path)
	switch string(coll) {
	case CollectionPost:
		return KindPost
	case CollectionFollow:
		return KindFollow
	case CollectionRepost:
		return KindRepost
	case CollectionProfile:
		return KindProfile
	default:
		return KindLike
	}
}
