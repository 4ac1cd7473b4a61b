package car

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// AppendHeader appends a CAR v1 header — varint(length), then the canonical
// DAG-CBOR map {roots: [...], version: 1} — to b and returns the extended
// slice. The roots may be empty (getBlocks answers have none). Roots must be
// defined CIDs: cid.Undef would be written as an empty link that readers
// refuse (NewWriter checks this; AppendHeader, like append, does not fail).
func AppendHeader(b []byte, roots ...cid.Cid) []byte {
	b = binary.AppendUvarint(b, uint64(headerBodyLen(roots)))
	b = dagcbor.AppendMapHeader(b, 2)
	b = dagcbor.AppendText(b, "roots") // "roots" sorts before "version": shorter
	b = dagcbor.AppendArrayHeader(b, len(roots))
	for _, r := range roots {
		b = dagcbor.AppendCID(b, r)
	}
	b = dagcbor.AppendText(b, "version")
	return dagcbor.AppendUint(b, 1)
}

// HeaderSize is the number of bytes AppendHeader writes for roots, length
// prefix included: 18 for no root, 59 for one sha2-256 CID.
func HeaderSize(roots ...cid.Cid) int {
	n := headerBodyLen(roots)
	return uvarintLen(uint64(n)) + n
}

// headerBodyLen is the length of the header's DAG-CBOR map.
func headerBodyLen(roots []cid.Cid) int {
	n := 1 + 1 + len("roots") + cborHeadLen(len(roots)) + 1 + len("version") + 1
	for _, r := range roots {
		k := len(r.KeyString()) + 1 // 0x00 multibase prefix
		n += 2 + cborHeadLen(k) + k // tag 42 is d8 2a
	}
	return n
}

// cborHeadLen is the length of a CBOR item head whose argument is n.
func cborHeadLen(n int) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// parseHeader decodes the header map. Keys must be in canonical order (as
// every CAR writer emits them); keys other than roots and version are
// skipped. The version is checked before the roots so that a CARv2 pragma
// ({version: 2}, no roots) reports ErrBadVersion.
func parseHeader(body []byte) ([]cid.Cid, error) {
	d := dagcbor.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, fmt.Errorf("car: header: %w: %w", ErrBadHeader, err)
	}
	var (
		roots               []cid.Cid
		haveRoots, haveVers bool
		version             uint64
		prev                []byte
	)
	for i := 0; i < n; i++ {
		if prev, err = d.ReadMapKey(prev); err != nil {
			return nil, fmt.Errorf("car: header: %w: %w", ErrBadHeader, err)
		}
		switch string(prev) {
		case "roots":
			haveRoots = true
			if roots, err = readRoots(d); err != nil {
				return nil, err
			}
		case "version":
			haveVers = true
			if _, err := d.Peek(); err != nil {
				return nil, fmt.Errorf("car: header: %w: version: %w", ErrBadHeader, err)
			}
			if version, err = d.ReadUint(); err != nil {
				return nil, fmt.Errorf("car: header: %w: version: %w", ErrBadVersion, err)
			}
		default:
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("car: header: %w: key %q: %w", ErrBadHeader, prev, err)
			}
		}
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("car: header: %w: %w", ErrBadHeader, err)
	}
	switch {
	case !haveVers:
		return nil, fmt.Errorf("car: header: %w: no version", ErrBadVersion)
	case version != 1:
		return nil, fmt.Errorf("car: header: %w: version %d, want 1", ErrBadVersion, version)
	case !haveRoots:
		return nil, fmt.Errorf("car: header: %w: no roots", ErrBadHeader)
	}
	return roots, nil
}

func readRoots(d *dagcbor.Decoder) ([]cid.Cid, error) {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return nil, fmt.Errorf("car: header: %w: roots: %w", ErrBadHeader, err)
	}
	roots := make([]cid.Cid, 0, n) // n is bounded by the header's length
	for i := 0; i < n; i++ {
		c, err := d.ReadCID()
		if err != nil {
			return nil, fmt.Errorf("car: header: %w: root %d: %w", ErrBadHeader, i, err)
		}
		roots = append(roots, c)
	}
	return roots, nil
}
