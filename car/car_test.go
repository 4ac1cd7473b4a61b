package car

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// The header layouts of sync-spec.md §4.5: a 1-byte varint, then the map.
const (
	zeroRootHeaderHex = "11 a2 65 72 6f 6f 74 73 80 67 76 65 72 73 69 6f 6e 01"
	// CID of the empty DAG-CBOR map a0, a well-known atproto constant.
	emptyMapCID = "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
)

func TestHeaderBytes(t *testing.T) {
	root := testutil.MustCID(t, emptyMapCID)
	digest := root.KeyString()[4:]
	want := testutil.Unhex(t, "3a a2 65 72 6f 6f 74 73 81 d8 2a 58 25 00 01 71 12 20"+
		hex.EncodeToString([]byte(digest))+"67 76 65 72 73 69 6f 6e 01")
	if len(want) != 59 || want[0] != 58 {
		t.Fatalf("spec layout is %d bytes with prefix %d; want 59 with 58", len(want), want[0])
	}
	if got := AppendHeader(nil, root); !bytes.Equal(got, want) {
		t.Errorf("AppendHeader(1 root) =\n% x\nwant\n% x", got, want)
	}
	if got := HeaderSize(root); got != 59 {
		t.Errorf("HeaderSize(1 root) = %d, want 59", got)
	}
	zero := testutil.Unhex(t, zeroRootHeaderHex)
	if got := AppendHeader(nil); !bytes.Equal(got, zero) {
		t.Errorf("AppendHeader(no roots) = % x, want % x", got, zero)
	}
	if got := HeaderSize(); got != 18 || len(zero) != 18 || zero[0] != 17 {
		t.Errorf("HeaderSize() = %d, want 18 (17 bytes of CBOR)", got)
	}
	// AppendHeader appends: existing bytes are kept.
	if got := AppendHeader([]byte{0xff}); !bytes.Equal(got, append([]byte{0xff}, zero...)) {
		t.Errorf("AppendHeader does not append: % x", got)
	}
}

// TestHandComputed checks a whole CAR written by hand from known constants:
// the block "hello" as a raw blob, also the root.
func TestHandComputed(t *testing.T) {
	const helloSHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	c := dagcbor.SumRaw([]byte("hello"))
	if c.String() != "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq" {
		t.Fatalf("SumRaw(hello) = %s", c)
	}
	want := testutil.Unhex(t, "3a a2 65 72 6f 6f 74 73 81 d8 2a 58 25 00 01 55 12 20"+helloSHA256+
		"67 76 65 72 73 69 6f 6e 01"+
		"29"+"01 55 12 20"+helloSHA256+"68 65 6c 6c 6f") // 0x29 = 41 = 36 + 5
	got := AppendBlock(AppendHeader(nil, c), c, []byte("hello"))
	if !bytes.Equal(got, want) {
		t.Errorf("AppendHeader+AppendBlock =\n% x\nwant\n% x", got, want)
	}
	if n := HeaderSize(c) + SectionSize(c, 5); n != len(want) {
		t.Errorf("HeaderSize+SectionSize = %d, want %d", n, len(want))
	}
	if got := writeCAR(t, []cid.Cid{c}, []block{{c, []byte("hello")}}); !bytes.Equal(got, want) {
		t.Errorf("Writer =\n% x\nwant\n% x", got, want)
	}
	roots, blocks, err := readBlocks(want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0] != c || len(blocks) != 1 || blocks[0].c != c || string(blocks[0].data) != "hello" {
		t.Errorf("read back roots %v blocks %v", roots, blocks)
	}
}

func TestSectionSizeVarint(t *testing.T) {
	c := dagcbor.SumRaw(nil)
	for _, tc := range []struct{ dataLen, want int }{
		{0, 1 + 36}, {91, 1 + 127}, {92, 2 + 128}, {16347, 2 + 16383}, {16348, 3 + 16384},
	} {
		if got := SectionSize(c, tc.dataLen); got != tc.want {
			t.Errorf("SectionSize(%d) = %d, want %d", tc.dataLen, got, tc.want)
		}
		if got := len(AppendBlock(nil, c, make([]byte, tc.dataLen))); got != tc.want {
			t.Errorf("len(AppendBlock(%d bytes)) = %d, want %d", tc.dataLen, got, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name             string
		nBlocks, nRoots  int
		minSize, maxSize int
	}{
		{"empty", 0, 0, 0, 0},
		{"zero roots", 50, 0, 0, 300},
		{"one root", 500, 1, 1, 600},
		{"three roots", 20, 3, 100, 500},
		{"large blocks", 8, 1, 100_000, 1_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks := randomBlocks(rng, tc.nBlocks, tc.minSize, tc.maxSize)
			// duplicates and an empty blob, in any order
			if len(blocks) > 2 {
				blocks = append(blocks, blocks[1], blocks[0])
			}
			blocks = append(blocks, block{dagcbor.SumRaw(nil), []byte{}})
			var roots []cid.Cid
			for i := 0; i < tc.nRoots; i++ {
				roots = append(roots, blocks[i].c)
			}
			car := writeCAR(t, roots, blocks)

			// The in-memory builders give the same bytes.
			built := AppendHeader(nil, roots...)
			for _, b := range blocks {
				built = AppendBlock(built, b.c, b.data)
			}
			if !bytes.Equal(built, car) {
				t.Fatal("AppendHeader/AppendBlock output differs from Writer output")
			}

			gotRoots, got, err := readBlocks(car, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gotRoots, roots) && !(len(gotRoots) == 0 && len(roots) == 0) {
				t.Errorf("roots = %v, want %v", gotRoots, roots)
			}
			if len(got) != len(blocks) {
				t.Fatalf("read %d blocks, want %d", len(got), len(blocks))
			}
			for i := range got {
				if got[i].c != blocks[i].c || !bytes.Equal(got[i].data, blocks[i].data) {
					t.Fatalf("block %d differs", i)
				}
				if cap(got[i].data) != len(got[i].data) {
					t.Fatalf("block %d: cap %d != len %d", i, cap(got[i].data), len(got[i].data))
				}
			}

			// ReadAll collapses duplicates.
			allRoots, all, err := ReadAll(bytes.NewReader(car), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(allRoots) != len(roots) {
				t.Errorf("ReadAll roots = %v, want %v", allRoots, roots)
			}
			want := map[cid.Cid]string{}
			for _, b := range blocks {
				want[b.c] = string(b.data)
			}
			if len(all) != len(want) {
				t.Errorf("ReadAll: %d blocks, want %d", len(all), len(want))
			}
			for c, d := range want {
				if string(all[c]) != d {
					t.Errorf("ReadAll: block %s differs", c)
				}
			}
		})
	}
}

func TestZeroRoots(t *testing.T) {
	// A getBlocks answer: no roots, some blocks; and a CAR with nothing at all.
	blk := []byte{0xa0}
	c := testutil.MustCID(t, emptyMapCID)
	car := append(testutil.Unhex(t, zeroRootHeaderHex), AppendBlock(nil, c, blk)...)
	r, err := NewReader(bytes.NewReader(car), nil)
	if err != nil {
		t.Fatal(err)
	}
	if roots := r.Roots(); len(roots) != 0 {
		t.Errorf("roots = %v, want none", roots)
	}
	got, data, err := r.Next()
	if err != nil || got != c || !bytes.Equal(data, blk) {
		t.Fatalf("Next = %v % x %v", got, data, err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next after the last block = %v, want io.EOF", err)
		}
	}
	if r.Offset() != int64(len(car)) {
		t.Errorf("Offset = %d, want %d", r.Offset(), len(car))
	}

	roots, blocks, err := ReadAll(bytes.NewReader(testutil.Unhex(t, zeroRootHeaderHex)), nil)
	if err != nil || len(roots) != 0 || len(blocks) != 0 {
		t.Errorf("header-only CAR: %v %v %v", roots, blocks, err)
	}
}

// TestDataModelFixtures builds a CAR from the interop data-model blocks and
// their published CIDs: the reader must accept each pairing and refuse
// swapped ones.
func TestDataModelFixtures(t *testing.T) {
	var fixtures []struct {
		CBOR string `json:"cbor_base64"`
		CID  string `json:"cid"`
	}
	testutil.FixtureJSON(t, "interop/data-model/data-model-fixtures.json", &fixtures)
	if len(fixtures) < 2 {
		t.Fatalf("%d fixtures", len(fixtures))
	}
	var blocks []block
	for _, f := range fixtures {
		data, err := base64.RawStdEncoding.DecodeString(f.CBOR)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, block{testutil.MustCID(t, f.CID), data})
	}
	car := writeCAR(t, []cid.Cid{blocks[0].c}, blocks)
	roots, got, err := readBlocks(car, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0] != blocks[0].c || len(got) != len(blocks) {
		t.Fatalf("roots %v, %d blocks", roots, len(got))
	}
	for i := range blocks {
		swapped := block{blocks[i].c, blocks[(i+1)%len(blocks)].data}
		_, _, err := readBlocks(writeCAR(t, nil, []block{swapped}), nil)
		if !errors.Is(err, ErrHashMismatch) {
			t.Errorf("fixture %d with another block's bytes: %v, want ErrHashMismatch", i, err)
		}
	}
}

func TestHashMismatch(t *testing.T) {
	blocks := randomBlocks(rand.New(rand.NewPCG(3, 4)), 3, 40, 60)
	car := writeCAR(t, nil, blocks)
	hdr := HeaderSize()
	second := hdr + SectionSize(blocks[0].c, len(blocks[0].data))
	// Flip each byte of the second section's digest and data.
	lenLen := SectionSize(blocks[1].c, len(blocks[1].data)) - 36 - len(blocks[1].data)
	for i := second + lenLen + 4; i < second+SectionSize(blocks[1].c, len(blocks[1].data)); i++ {
		bad := slices.Clone(car)
		bad[i] ^= 0x01
		_, got, err := readBlocks(bad, nil)
		if !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("byte %d flipped: %v, want ErrHashMismatch", i, err)
		}
		if len(got) != 1 {
			t.Fatalf("byte %d flipped: %d blocks before the error, want 1", i, len(got))
		}
		want := "car: block 1 at offset " + strconv.Itoa(second) + ": "
		if msg := err.Error(); len(msg) < len(want) || msg[:len(want)] != want {
			t.Fatalf("error %q does not start with %q", msg, want)
		}
	}
}

// TestTruncated cuts a small CAR at every length. Cuts at a section boundary
// read as a shorter CAR; every other cut is ErrTruncated.
func TestTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	blocks := append(randomBlocks(rng, 2, 10, 30), randomBlocks(rng, 1, 200, 200)...) // 2-byte varint
	root := blocks[0].c
	car := writeCAR(t, []cid.Cid{root}, blocks)
	// Boundaries from the layout: 59-byte header, then 1- or 2-byte varint + 36 + data.
	boundaries := map[int]int{59: 0}
	end := 59
	for i, b := range blocks {
		n := 36 + len(b.data)
		end += n + 1
		if n >= 128 {
			end++
		}
		boundaries[end] = i + 1
	}
	if end != len(car) {
		t.Fatalf("CAR is %d bytes, layout says %d", len(car), end)
	}
	for cut := 0; cut <= len(car); cut++ {
		_, got, err := readBlocks(car[:cut], nil)
		if n, ok := boundaries[cut]; ok {
			if err != nil || len(got) != n {
				t.Errorf("cut at boundary %d: %d blocks, %v; want %d blocks", cut, len(got), err, n)
			}
			continue
		}
		if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
}

func TestStickyError(t *testing.T) {
	blocks := randomBlocks(rand.New(rand.NewPCG(7, 8)), 2, 10, 20)
	car := writeCAR(t, nil, blocks)
	car[len(car)-1] ^= 0xff
	r, err := NewReader(bytes.NewReader(car), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, _, err1 := r.Next()
	_, _, err2 := r.Next()
	if !errors.Is(err1, ErrHashMismatch) || err1 != err2 {
		t.Errorf("errors %v then %v, want the same ErrHashMismatch", err1, err2)
	}
}
