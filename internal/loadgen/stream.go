package loadgen

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxFrameBytes bounds one frame of a stream file (a #commit is at most
// 2 MB of blocks; the rest is small).
const MaxFrameBytes = 4 << 20

// Stream is a generated stream opened for reading: its manifest and the
// offset of every frame in frames.bin. It is safe for concurrent use.
type Stream struct {
	Dir      string
	Manifest Manifest
	file     *os.File
	offsets  []int64 // of each frame's length prefix; seq s is offsets[s-1]
	size     int64
}

// Open opens a generated stream directory and indexes its frames.
func Open(dir string) (*Stream, error) {
	mb, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	s := &Stream{Dir: dir}
	if err := json.Unmarshal(mb, &s.Manifest); err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", manifestFile, err)
	}
	if s.file, err = os.Open(filepath.Join(dir, framesFile)); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if err := s.index(); err != nil {
		s.file.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stream) index() error {
	s.offsets = make([]int64, 0, s.Manifest.Frames)
	r := bufio.NewReaderSize(s.file, 1<<20)
	var off int64
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || n > MaxFrameBytes {
			return fmt.Errorf("loadgen: %s: bad frame length at offset %d", framesFile, off)
		}
		s.offsets = append(s.offsets, off)
		if _, err := r.Discard(int(n)); err != nil {
			return fmt.Errorf("loadgen: %s: truncated frame at offset %d", framesFile, off)
		}
		off += int64(uvarintLen(n)) + int64(n)
	}
	s.size = off
	if int64(len(s.offsets)) != s.Manifest.Frames {
		return fmt.Errorf("loadgen: %s holds %d frames, the manifest says %d", framesFile, len(s.offsets), s.Manifest.Frames)
	}
	return nil
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// Close closes the frames file.
func (s *Stream) Close() error { return s.file.Close() }

// Len is the number of frames (the last seq).
func (s *Stream) Len() int64 { return int64(len(s.offsets)) }

// Reader returns a reader of the frames from seq from+1 on.
func (s *Stream) Reader(from int64) *FrameReader {
	from = max(0, min(from, s.Len()))
	off := s.size
	if from < s.Len() {
		off = s.offsets[from]
	}
	return &FrameReader{r: bufio.NewReaderSize(io.NewSectionReader(s.file, off, s.size-off), 256<<10), seq: from}
}

// Frame returns the frame of seq (1..Len).
func (s *Stream) Frame(seq int64) ([]byte, error) {
	if seq < 1 || seq > s.Len() {
		return nil, fmt.Errorf("loadgen: no frame %d in a stream of %d", seq, s.Len())
	}
	b, _, err := s.Reader(seq - 1).Next(nil)
	return b, err
}

// FrameReader reads frames in seq order.
type FrameReader struct {
	r   *bufio.Reader
	seq int64 // of the last frame read
}

// Next reads the next frame into buf (reused when large enough) and
// returns it with its seq; io.EOF at the end.
func (f *FrameReader) Next(buf []byte) ([]byte, int64, error) {
	n, err := binary.ReadUvarint(f.r)
	if err != nil {
		return nil, 0, err
	}
	if n > MaxFrameBytes {
		return nil, 0, fmt.Errorf("loadgen: frame of %d bytes", n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return nil, 0, fmt.Errorf("loadgen: truncated frame: %w", err)
	}
	f.seq++
	return buf, f.seq, nil
}

// Account is one synthetic account: its DID and #atproto signing key
// (multibase).
type Account struct {
	DID string
	Key string
}

// Accounts reads the stream's accounts, in the order of their genesis
// commits.
func (s *Stream) Accounts() ([]Account, error) {
	f, err := os.Open(filepath.Join(s.Dir, accountsFile))
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	defer f.Close()
	out := make([]Account, 0, s.Manifest.Params.Accounts)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		did, key, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, fmt.Errorf("loadgen: %s: bad line %q", accountsFile, sc.Text())
		}
		out = append(out, Account{DID: did, Key: key})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", accountsFile, err)
	}
	return out, nil
}
