package store

import (
	"context"
	"fmt"
	"testing"
)

// Live blocks written, compacted into the bottom level: RefCount finds
// every one of them and none of the blocks never written, whether the
// bottom level's filters are read (they fit the cache) or not (a cache too
// small for them).
func TestRefCountWithBottomFilters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cache     int64
		wantUsing bool
	}{
		{"filters read", 16 << 20, true},
		{"filters too big for the cache", 1 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openMem(t, Options{CacheSize: tc.cache})
			ctx := context.Background()
			res, err := d.Apply(ctx, &Change{Account: &Account{DID: "did:plc:filters"}})
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			var live []Block
			for i := range n / 100 {
				var blocks []Block
				for j := range 100 {
					blocks = append(blocks, block(fmt.Sprint("live", i, "-", j)))
				}
				c := blocks[0]
				if _, err := d.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: c.CID, Rev: rev1, Data: c.CID}, NewBlocks: blocks}); err != nil {
					t.Fatal(err)
				}
				live = append(live, blocks...)
			}
			if err := d.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			if err := d.checkBottomFilters(); err != nil {
				t.Fatal(err)
			}
			if got := d.bottomFilters.Load(); got != tc.wantUsing {
				t.Fatalf("bottom filters used: %v, want %v", got, tc.wantUsing)
			}
			if tables := d.db.Metrics().Levels[6].TablesCount; tables == 0 {
				t.Fatal("nothing in the bottom level")
			}
			for _, b := range live {
				if c, err := d.RefCount(res.UID, b.CID); err != nil || c != 1 {
					t.Fatalf("live block %s counts %d (%v)", b.CID, c, err)
				}
			}
			for i := range n {
				if c, err := d.RefCount(res.UID, block(fmt.Sprint("absent", i)).CID); err != nil || c != 0 {
					t.Fatalf("absent block counts %d (%v)", c, err)
				}
			}
		})
	}
}
