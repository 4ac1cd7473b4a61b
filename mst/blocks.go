package mst

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// BlockGetter is where a tree's nodes are read from. Implementations return an
// error wrapping ErrNotFound when the block is absent. The bytes returned must
// be the block whose hash is c (stores check that once, when blocks arrive);
// the tree does not modify or retain them beyond decoding.
type BlockGetter interface {
	GetBlock(c cid.Cid) ([]byte, error)
}

// MemBlocks is an in-memory BlockGetter: the blocks of a CAR slice, or of a
// test. Reading it from several goroutines is safe; writing is not.
type MemBlocks map[cid.Cid][]byte

var _ BlockGetter = MemBlocks(nil)

// GetBlock returns the block stored under c, or an error wrapping ErrNotFound.
func (m MemBlocks) GetBlock(c cid.Cid) ([]byte, error) {
	b, ok := m[c]
	if !ok {
		return nil, fmt.Errorf("mst: block %s: %w", c, ErrNotFound)
	}
	return b, nil
}

// Put stores data under its dag-cbor CID, which it returns.
func (m MemBlocks) Put(data []byte) cid.Cid {
	c := dagcbor.SumCBOR(data)
	m[c] = data
	return c
}
