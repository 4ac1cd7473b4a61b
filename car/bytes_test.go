package car

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
)

// ParseBytes must refuse every malformed input of the reader's table with
// the same error class.
func TestParseBytesErrors(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			_, blocks, err := ParseBytes(tc.bytes(t), tc.opts)
			if tc.want == nil && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && len(blocks) > tc.blocks {
				t.Errorf("%d distinct blocks, want at most %d", len(blocks), tc.blocks)
			}
		})
	}
}

func TestParseBytesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	blocks := randomBlocks(rng, 200, 0, 2000)
	roots := []cid.Cid{blocks[0].c, blocks[1].c}
	data := writeCAR(t, roots, blocks)
	gotRoots, got, err := ParseBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotRoots, roots) {
		t.Fatalf("roots %v, want %v", gotRoots, roots)
	}
	for _, b := range blocks {
		if !bytes.Equal(got[b.c], b.data) {
			t.Fatalf("block %s differs", b.c)
		}
	}
	if _, _, err := ParseBytes(data, &Options{MaxTotal: int64(len(data) - 1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxTotal: got %v", err)
	}
	if _, _, err := ParseBytes(data, &Options{MaxBlocks: 10}); !errors.Is(err, ErrTooManyBlocks) {
		t.Fatalf("MaxBlocks: got %v", err)
	}
}

// FuzzParseBytes checks ParseBytes against the streaming Reader: both accept
// the same inputs and return the same blocks.
func FuzzParseBytes(f *testing.F) {
	for _, tc := range readCases {
		f.Add(tc.bytes(f))
	}
	rng := rand.New(rand.NewPCG(23, 24))
	valid := writeCAR(f, nil, randomBlocks(rng, 5, 0, 100))
	f.Add(valid)
	for i := 0; i < 10; i++ {
		m := bytes.Clone(valid)
		m[rng.IntN(len(m))] ^= byte(1 + rng.IntN(255))
		f.Add(m)
	}
	opts := &Options{MaxBlockSize: 1 << 16, MaxTotal: 1 << 20, MaxBlocks: 1000}
	f.Fuzz(func(t *testing.T, in []byte) {
		roots, got, err := ParseBytes(in, opts)
		wantRoots, want, wantErr := ReadAll(bytes.NewReader(in), opts)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseBytes err %v, Reader err %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !slices.Equal(roots, wantRoots) || !maps.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("ParseBytes and Reader disagree on the content")
		}
	})
}
