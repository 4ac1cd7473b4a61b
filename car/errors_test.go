package car

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// Hand-assembled pieces: "roots" = 65 72 6f 6f 74 73, "version" = 67 76 65
// 72 73 69 6f 6e, "comment" = 67 63 6f 6d 6d 65 6e 74.
const (
	rootsKey   = "65 72 6f 6f 74 73 "
	versionKey = "67 76 65 72 73 69 6f 6e "
	helloHex   = "68 65 6c 6c 6f"
	helloSHA   = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
)

type readCase struct {
	name    string
	car     string // hex; zero-root header is prepended when section is true
	section bool
	opts    *Options
	blocks  int   // blocks read before the error (or in total)
	want    error // nil: the CAR reads to io.EOF
}

var readCases = []readCase{
	// headers
	{name: "empty input", car: "", want: ErrTruncated},
	{name: "zero-length header", car: "00", want: ErrBadHeader},
	{name: "header not a map", car: "01 80", want: ErrBadHeader},
	{name: "version 2", car: "11 a2 " + rootsKey + "80 " + versionKey + "02", want: ErrBadVersion},
	{name: "CARv2 pragma", car: "0a a1 " + versionKey + "02", want: ErrBadVersion},
	{name: "version 0", car: "11 a2 " + rootsKey + "80 " + versionKey + "00", want: ErrBadVersion},
	{name: "version as text", car: "12 a2 " + rootsKey + "80 " + versionKey + "61 31", want: ErrBadVersion},
	{name: "no version", car: "08 a1 " + rootsKey + "80", want: ErrBadVersion},
	{name: "no roots", car: "0a a1 " + versionKey + "01", want: ErrBadHeader},
	{name: "roots null", car: "11 a2 " + rootsKey + "f6 " + versionKey + "01", want: ErrBadHeader},
	{name: "root not a CID", car: "12 a2 " + rootsKey + "81 01 " + versionKey + "01", want: ErrBadHeader},
	{name: "keys out of order", car: "11 a2 " + versionKey + "01 " + rootsKey + "80", want: ErrBadHeader},
	{name: "trailing byte in header", car: "12 a2 " + rootsKey + "80 " + versionKey + "01 00", want: ErrBadHeader},
	{name: "header shorter than its map", car: "10 a2 " + rootsKey + "80 " + versionKey, want: ErrBadHeader},
	{name: "unknown header key skipped", car: "1d a3 " + rootsKey + "80 67 63 6f 6d 6d 65 6e 74 63 68 65 79 " + versionKey + "01"},
	{name: "header length not minimal", car: "91 00", want: ErrBadVarint},
	{name: "header length overlong", car: "80 80 80 80 80 80 80 80 80 01", want: ErrBadVarint},
	{name: "header length cut", car: "91", want: ErrTruncated},
	{name: "header too large", car: "81 80 04", want: ErrHeaderTooLarge},
	{name: "header over MaxHeaderSize", car: "11 a2 " + rootsKey + "80 " + versionKey + "01", opts: &Options{MaxHeaderSize: 16}, want: ErrHeaderTooLarge},
	{name: "header at MaxHeaderSize", car: "11 a2 " + rootsKey + "80 " + versionKey + "01", opts: &Options{MaxHeaderSize: 17}},

	// sections
	{name: "zero-length section", section: true, car: "00", want: ErrBadSection},
	{name: "section length not minimal", section: true, car: "a9 00 01 55 12 20 " + helloSHA + helloHex, want: ErrBadVarint},
	{name: "section length overlong", section: true, car: "ff ff ff ff ff ff ff ff ff 01", want: ErrBadVarint},
	{name: "section length cut", section: true, car: "a9", want: ErrTruncated},
	{name: "section shorter than CID", section: true, car: "1e 01 55 12 20 " + helloSHA[:52], want: ErrBadSection},
	{name: "section shorter than CID fields", section: true, car: "03 01 55 12 20", want: ErrBadSection},
	{name: "section of 4 GB", section: true, car: "80 80 80 80 10", want: ErrBlockTooLarge},
	{name: "section of 2^63-1", section: true, car: "ff ff ff ff ff ff ff ff 7f", want: ErrBlockTooLarge},
	{name: "CID version 2", section: true, car: "29 02 55 12 20 " + helloSHA + helloHex, want: ErrBadCID},
	{name: "CID version 0 varint", section: true, car: "29 00 55 12 20 " + helloSHA + helloHex, want: ErrBadCID},
	{name: "CID codec not minimal", section: true, car: "2a 01 d5 00 12 20 " + helloSHA + helloHex, want: ErrBadCID},
	{name: "CID digest longer than 256", section: true, car: "ff 03 01 55 00 ac 02" + strings.Repeat(" 00", 300+5), want: ErrBadCID},
	{name: "sha2-512 refused", section: true, car: "49 01 55 13 40 " + strings.Repeat(helloSHA, 2) + helloHex, want: ErrUnsupportedHash},
	{name: "blake3 refused", section: true, car: "29 01 55 1e 20 " + helloSHA + helloHex, want: ErrUnsupportedHash},
	{name: "truncated sha2-256 digest refused", section: true, car: "19 01 55 12 10 " + helloSHA[:32] + helloHex, want: ErrUnsupportedHash},
	{name: "raw sha2-256", section: true, car: "29 01 55 12 20 " + helloSHA + helloHex, blocks: 1},
	{name: "raw sha2-256 mismatch", section: true, car: "29 01 55 12 20 " + helloSHA + "68 65 6c 6c 6e", want: ErrHashMismatch},
	{name: "empty block", section: true, car: "24 01 55 12 20 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", blocks: 1},
	{name: "CIDv0", section: true, car: "27 12 20 " + helloSHA + helloHex, blocks: 1},
	{name: "CIDv0 mismatch", section: true, car: "27 12 20 " + helloSHA + "00 00 00 00 00", want: ErrHashMismatch},
	{name: "identity", section: true, car: "0e 01 55 00 05 " + helloHex + helloHex, blocks: 1},
	{name: "identity mismatch", section: true, car: "0e 01 55 00 05 " + helloHex + "68 65 6c 6c 6e", want: ErrHashMismatch},
	{name: "identity empty", section: true, car: "04 01 55 00 00", blocks: 1},
	{name: "data cut", section: true, car: "29 01 55 12 20 " + helloSHA + "68 65", want: ErrTruncated},
	{name: "CID cut", section: true, car: "29 01 55 12 20 " + helloSHA[:20], want: ErrTruncated},

	// limits
	{name: "block at MaxBlockSize", section: true, car: "29 01 55 12 20 " + helloSHA + helloHex, opts: &Options{MaxBlockSize: 5}, blocks: 1},
	{name: "block over MaxBlockSize", section: true, car: "29 01 55 12 20 " + helloSHA + helloHex, opts: &Options{MaxBlockSize: 4}, want: ErrBlockTooLarge},
	{name: "at MaxTotal", section: true, car: "29 01 55 12 20 " + helloSHA + helloHex, opts: &Options{MaxTotal: 18 + 42}, blocks: 1},
	{name: "over MaxTotal", section: true, car: "29 01 55 12 20 " + helloSHA + helloHex, opts: &Options{MaxTotal: 18 + 41}, want: ErrTooLarge},
	{name: "header over MaxTotal", section: true, car: "", opts: &Options{MaxTotal: 17}, want: ErrTooLarge},
	{name: "at MaxBlocks", section: true, car: strings.Repeat("29 01 55 12 20 "+helloSHA+helloHex, 2), opts: &Options{MaxBlocks: 2}, blocks: 2},
	{name: "over MaxBlocks", section: true, car: strings.Repeat("29 01 55 12 20 "+helloSHA+helloHex, 3), opts: &Options{MaxBlocks: 2}, blocks: 2, want: ErrTooManyBlocks},
	{name: "duplicates", section: true, car: strings.Repeat("29 01 55 12 20 "+helloSHA+helloHex, 3), blocks: 3},
}

func (tc readCase) bytes(t testing.TB) []byte {
	s := tc.car
	if tc.section {
		s = zeroRootHeaderHex + s
	}
	return testutil.Unhex(t, s)
}

func TestReadErrors(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			_, blocks, err := readBlocks(tc.bytes(t), tc.opts)
			if tc.want == nil && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "car: ") {
				t.Errorf("error %q lacks the car: prefix", err)
			}
			if len(blocks) != tc.blocks {
				t.Errorf("%d blocks, want %d", len(blocks), tc.blocks)
			}
		})
	}
}

// TestErrorPosition checks that a section error names the block and the
// offset where its section starts.
func TestErrorPosition(t *testing.T) {
	car := testutil.Unhex(t, zeroRootHeaderHex+"29 01 55 12 20 "+helloSHA+helloHex+"00")
	_, _, err := readBlocks(car, nil)
	const want = "car: block 1 at offset 60: " // 18-byte header + 42-byte section
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want prefix %q", err, want)
	}
	_, _, err = readBlocks(testutil.Unhex(t, "11 a2 "+rootsKey+"80 "+versionKey+"02"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "car: header: ") {
		t.Errorf("err = %v, want a header error", err)
	}
}

// TestLimitsBeforeAllocation declares huge lengths and checks that the
// reader refuses them without allocating anything near their size.
func TestLimitsBeforeAllocation(t *testing.T) {
	hdr := testutil.Unhex(t, zeroRootHeaderHex)
	for _, tc := range []struct {
		name string
		car  []byte
		opts *Options
		want error
	}{
		{"4 GB block", binary.AppendUvarint(slices0(hdr), 4<<30), nil, ErrBlockTooLarge},
		{"4 GB block, MaxTotal", binary.AppendUvarint(slices0(hdr), 4<<30), &Options{MaxBlockSize: 8 << 30, MaxTotal: 1 << 20}, ErrTooLarge},
		{"1 GB header", binary.AppendUvarint(nil, 1<<30), nil, ErrHeaderTooLarge},
		{"1 GB header, MaxTotal", binary.AppendUvarint(nil, 1<<30), &Options{MaxHeaderSize: 2 << 30, MaxTotal: 1 << 20}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := readBlocks(tc.car, tc.opts)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes to refuse it", n)
			}
		})
	}
}

func slices0(b []byte) []byte { return append([]byte(nil), b...) }

func TestOptionsDefaults(t *testing.T) {
	var nilOpts *Options
	for _, o := range []*Options{nilOpts, {}, {MaxBlockSize: -1, MaxHeaderSize: -1, MaxTotal: -1, MaxBlocks: -1}} {
		got := o.withDefaults()
		want := Options{MaxBlockSize: 2 << 20, MaxHeaderSize: 64 << 10}
		if got != want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", o, got, want)
		}
	}
	// A block of exactly 2 MiB is accepted by default, one byte more is not.
	for _, tc := range []struct {
		size int
		want error
	}{{2 << 20, nil}, {2<<20 + 1, ErrBlockTooLarge}} {
		data := make([]byte, tc.size)
		sum := sha256.Sum256(data)
		c, err := cid.Cast(append([]byte{0x01, 0x55, 0x12, 0x20}, sum[:]...))
		if err != nil {
			t.Fatal(err)
		}
		_, blocks, err := readBlocks(AppendBlock(AppendHeader(nil), c, data), nil)
		if !errors.Is(err, tc.want) || (tc.want == nil && len(blocks) != 1) {
			t.Errorf("%d-byte block: %v, %d blocks", tc.size, err, len(blocks))
		}
	}
}

// TestBufioReuse checks that a caller's *bufio.Reader is read directly
// rather than wrapped, unless its buffer is too small to peek at a CID.
func TestBufioReuse(t *testing.T) {
	car := writeCAR(t, nil, randomBlocks(rand.New(rand.NewPCG(9, 10)), 5, 10, 50))
	for _, tc := range []struct {
		size  int
		reuse bool
	}{{4096, true}, {256, true}, {16, false}} {
		br := bufioReader(car, tc.size)
		r, err := NewReader(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (r.br == br) != tc.reuse {
			t.Errorf("bufio size %d: reused = %v, want %v", tc.size, r.br == br, tc.reuse)
		}
		n := 0
		for {
			if _, _, err := r.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			n++
		}
		if n != 5 {
			t.Errorf("bufio size %d: %d blocks, want 5", tc.size, n)
		}
	}
}
