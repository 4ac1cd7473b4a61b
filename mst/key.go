package mst

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
)

// MaxKeyLen is the longest key, in bytes, a tree accepts or decodes.
const MaxKeyLen = 1024

// HeightForKey returns the layer a key lives on: the number of leading zero
// bits of SHA-256(key), divided by two (fanout 4). Height 0 is the bottom.
func HeightForKey(key []byte) int {
	d := sha256.Sum256(key)
	zeros := 0
	for _, b := range d {
		if b != 0 {
			zeros += bits.LeadingZeros8(b)
			break
		}
		zeros += 8
	}
	return zeros / 2
}

// CountPrefixLen returns the number of leading bytes a and b share.
func CountPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// checkKeyLen is the rule every key obeys, stored or looked up.
func checkKeyLen(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// CheckPath reports whether key has the repo-path shape atproto stores in
// trees: "<collection>/<record key>", exactly one slash, both sides non-empty,
// every other byte one of A-Z a-z 0-9 . _ ~ : -, at most MaxKeyLen bytes.
// (The NSID and record-key grammars are stricter; they are checked where
// records are written, not here.)
func CheckPath(key []byte) error {
	if err := checkKeyLen(key); err != nil {
		return err
	}
	slash := -1
	for i, c := range key {
		switch {
		case c == '/':
			if slash >= 0 {
				return fmt.Errorf("%w: %q has more than one '/'", ErrInvalidKey, key)
			}
			slash = i
		case !pathByte[c]:
			return fmt.Errorf("%w: %q has byte %#02x at %d", ErrInvalidKey, key, c, i)
		}
	}
	if slash <= 0 || slash == len(key)-1 {
		return fmt.Errorf("%w: %q is not <collection>/<record key>", ErrInvalidKey, key)
	}
	return nil
}

// pathByte marks the bytes allowed in either segment of a repo path.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._~:-" {
		t[c] = true
	}
	return t
}()
