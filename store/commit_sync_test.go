package store

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// failingSyncFS fails every sync of the write-ahead log once armed.
type failingSyncFS struct {
	vfs.FS
	armed *atomic.Bool
}

func (fs failingSyncFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return failingSyncFile{File: f, armed: fs.armed}, nil
}

func (fs failingSyncFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil || !strings.HasSuffix(newname, ".log") {
		return f, err
	}
	return failingSyncFile{File: f, armed: fs.armed}, nil
}

type failingSyncFile struct {
	vfs.File
	armed *atomic.Bool
}

var errInjected = errors.New("injected sync failure")

func (f failingSyncFile) Sync() error {
	if f.armed.Load() {
		return errInjected
	}
	return f.File.Sync()
}

func (f failingSyncFile) SyncData() error {
	if f.armed.Load() {
		return errInjected
	}
	return f.File.SyncData()
}

// A change whose write-ahead log sync fails is not acknowledged, its events
// are not published, and the store takes no more changes: later groups
// were built on what the failed one wrote.
func TestFailedSyncBreaksTheStore(t *testing.T) {
	armed := new(atomic.Bool)
	var published atomic.Int64
	db := openMem(t, Options{
		fs:       failingSyncFS{FS: vfs.NewMem(), armed: armed},
		OnCommit: func(evs []CommittedEvent) { published.Add(int64(len(evs))) },
	})
	ctx := context.Background()
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Events: []FrameEncoder{seqFrame("a")}})
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Events: []FrameEncoder{seqFrame("b")}}); !errors.Is(err, errInjected) {
		t.Fatalf("change whose sync failed: err %v, want the sync's error", err)
	}
	armed.Store(false)
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Events: []FrameEncoder{seqFrame("c")}}); !errors.Is(err, errBroken) {
		t.Fatalf("change after a failed sync: err %v, want errBroken", err)
	}
	if db.LastSeq() != 1 || published.Load() != 1 {
		t.Fatalf("last seq %d, %d events published; want 1 and 1", db.LastSeq(), published.Load())
	}
}
