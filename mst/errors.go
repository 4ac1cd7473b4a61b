package mst

import "errors"

// Error classes. Every error the package returns wraps one of these (or an
// error from the BlockGetter, or one a Walk callback returned), with the key
// or CID it concerns.
var (
	// ErrNotFound: a block the operation needed is not in the BlockGetter.
	// For a partial tree it means the operation reached outside the blocks it
	// was given.
	ErrNotFound = errors.New("block not found")
	// ErrInvalidNode: node bytes fail strict decoding, or the tree breaks a
	// structure rule (heights, order, prefix compression, empty nodes). It
	// wraps the dagcbor error when decoding failed.
	ErrInvalidNode = errors.New("invalid MST node")
	// ErrInvalidKey: a key is empty, longer than MaxKeyLen, or (for Insert
	// and Builder.Add) not a repo path; or Builder keys out of order.
	ErrInvalidKey = errors.New("invalid MST key")
	// ErrInvalidValue: Insert or Builder.Add was given cid.Undef.
	ErrInvalidValue = errors.New("invalid MST value")
	// ErrStop is returned by a Walk callback to end the walk early; Walk then
	// returns nil.
	ErrStop = errors.New("stop walk")
)
