package host

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

const crashChildEnv = "RESERVOIR_CRASH_CHILD_DIR"

// TestMain runs the crash child instead of the tests when TestCrashSafety
// starts this binary as its child process.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes to a store on disk as fast as it can and prints every
// acknowledged commit, until it is killed.
func crashChild(dir string) {
	db, err := store.Open(store.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	h := New(Options{DB: db, Repos: &repostore.Repos{DB: db}})
	key, _ := atcrypto.GeneratePrivateKeyK256()
	ctx := context.Background()
	if _, err := h.CreateAccount(ctx, CreateAccountInput{Handle: "crash.test", DID: "did:web:crash.test", SigningKey: key.Multibase()}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	stop := time.Now().Add(time.Minute) // stops by itself if the parent never kills it
	for i := 0; i < 50_000 && time.Now().Before(stop); i++ {
		ws := []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/k%06d", i), Record: record(fmt.Sprint(i))}}}
		if i > 3 && i%4 == 0 {
			ws = append(ws, Write{Write: repo.Write{Action: repo.ActionDelete, Path: fmt.Sprintf("app.bsky.feed.post/k%06d", i-3)}})
		}
		res, err := h.ApplyWrites(ctx, "did:web:crash.test", ws, cid.Undef)
		if err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, "ack", res.Rev, res.Commit)
		out.Flush()
	}
	os.Exit(2)
}

// TestCrashSafety kills a writing process with SIGKILL and reopens its
// store: every acknowledged commit is there, and the store is consistent
// (the live blocks are exactly what the head reaches, the indexes match the
// tree, the log's last commit is the head).
func TestCrashSafety(t *testing.T) {
	for round := 0; round < 3; round++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(stdout)
		var lastRev, lastCommit string
		acks := 0
		deadline := time.After(30 * time.Second)
		want := 40 + round*70
	read:
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				lastRev, lastCommit = f[1], f[2]
				acks++
				if acks >= want {
					break read
				}
			} else if len(f) > 0 && f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
			select {
			case <-deadline:
				t.Fatal("child too slow")
			default:
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if acks < want {
			t.Fatalf("child acknowledged %d commits, want %d", acks, want)
		}

		db, err := store.Open(store.Options{Dir: dir, GCInterval: -1})
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		e := &env{t: t, db: db, repos: &repostore.Repos{DB: db}}
		a, err := db.Account("did:web:crash.test")
		if err != nil {
			t.Fatal(err)
		}
		if a.Head.Rev < lastRev {
			t.Fatalf("round %d: head rev %s is older than the last acknowledged %s: an acknowledged write was lost", round, a.Head.Rev, lastRev)
		}
		if a.Head.Rev == lastRev && a.Head.Commit.String() != lastCommit {
			t.Fatalf("round %d: head %s at the acknowledged rev, acknowledged %s", round, a.Head.Commit, lastCommit)
		}
		e.checkLiveSet(a.DID)
		tree, _ := e.repos.Tree(a)
		records := 0
		if err := tree.Walk(nil, func(k []byte, v cid.Cid) error {
			records++
			if ok, err := db.HasRecord(a.UID, string(k)); err != nil || !ok {
				return fmt.Errorf("record index of %s: %v", k, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.CollectionCount(a.UID, "app.bsky.feed.post"); n != uint64(records) {
			t.Fatalf("collection count %d, tree has %d", n, records)
		}
		var lastLogged string
		for _, f := range e.events(0) {
			if f.t == "#commit" {
				lastLogged = f.body["commit"].(cid.Cid).String()
			}
		}
		if lastLogged != a.Head.Commit.String() {
			t.Fatalf("last #commit in the log %s, head %s", lastLogged, a.Head.Commit)
		}
		db.Close()
	}
}
