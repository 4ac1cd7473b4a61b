package pebblestore_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/plc/directory/pebblestore"
	"github.com/reservoir-atproto/reservoir/plc/directory/storetest"
)

func TestConformanceInMemoryFS(t *testing.T) {
	storetest.Run(t, func(t *testing.T) directory.Store {
		s, err := pebblestore.Open("db", pebblestore.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceOnDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T) directory.Store {
		s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
