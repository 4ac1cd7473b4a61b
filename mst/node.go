package mst

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// entry is one key and its value (the record CID) in a node.
type entry struct {
	key []byte
	val cid.Cid
}

// link points at a subtree. A link is empty (no subtree) when both fields are
// zero; a stub when only cid is set (not loaded yet); loaded when n is set, in
// which case n.cid is authoritative (and cid.Undef while n is dirty).
type link struct {
	cid cid.Cid
	n   *node
}

func (l link) empty() bool { return l.n == nil && !l.cid.Defined() }

// CID returns the subtree's CID, cid.Undef for an empty link or a dirty node.
func (l link) CID() cid.Cid {
	if l.n != nil {
		return l.n.cid
	}
	return l.cid
}

// node is one MST node in memory. kids has one more element than entries:
// kids[0] is the wire format's "l" and kids[i+1] is entries[i]'s "t", so
// kids[i] holds the keys between entries[i-1] and entries[i].
type node struct {
	height  int
	entries []entry
	kids    []link
	cid     cid.Cid // CID of the encoding; cid.Undef while dirty
	orig    cid.Cid // CID when loaded; cid.Undef for nodes built by changes
	data    []byte  // encoding, kept when cid is new (see Tree.NewBlocks)
}

// newNode returns a dirty node with room for n entries.
func newNode(height, n int) *node {
	return &node{
		height:  height,
		entries: make([]entry, 0, n),
		kids:    make([]link, 0, n+1),
	}
}

// markDirty forgets the node's encoding after a change.
func (n *node) markDirty() {
	n.cid = cid.Undef
	n.data = nil
}

// isEmpty reports a node with no entries and no subtree: the empty tree's
// root, or a node about to be dropped from its parent.
func (n *node) isEmpty() bool { return len(n.entries) == 0 && n.kids[0].empty() }

// search returns the index of the first entry whose key is >= key, and
// whether that entry's key equals key. kids[i] is then the subtree where a
// key absent from this node would be.
func (n *node) search(key []byte) (int, bool) {
	lo, hi := 0, len(n.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(n.entries[m].key, key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(n.entries) && bytes.Equal(n.entries[lo].key, key)
}

// appendNode writes the canonical encoding of a node:
//
//	{"e": [{"k": suffix, "p": prefixLen, "t": right|null, "v": value}...], "l": left|null}
//
// Every kid that is not empty must have a known CID.
func appendNode(b []byte, entries []entry, kids []link) []byte {
	b = append(b, 0xa2, 0x61, 'e')
	b = dagcbor.AppendArrayHeader(b, len(entries))
	var prev []byte
	for i := range entries {
		key := entries[i].key
		p := CountPrefixLen(prev, key)
		b = append(b, 0xa4, 0x61, 'k')
		b = dagcbor.AppendBytes(b, key[p:])
		b = append(b, 0x61, 'p')
		b = dagcbor.AppendUint(b, uint64(p))
		b = append(b, 0x61, 't')
		b = dagcbor.AppendNullableCID(b, kids[i+1].CID())
		b = append(b, 0x61, 'v')
		b = dagcbor.AppendCID(b, entries[i].val)
		prev = key
	}
	b = append(b, 0x61, 'l')
	return dagcbor.AppendNullableCID(b, kids[0].CID())
}

// sizeHint bounds the encoded size of a node with these entries: 12 bytes of
// node framing, and per entry the key, 16 bytes of framing and two CIDs.
func sizeHint(entries []entry) int {
	n := 12
	for i := range entries {
		n += len(entries[i].key) + 16 + 2*41
	}
	return n
}

// emptyNodeCID is the CID of {e: [], l: null}, the tree with no keys.
var emptyNodeCID = dagcbor.SumCBOR(appendNode(nil, nil, []link{{}}))

// EmptyTreeCID returns the root CID of the tree with no keys,
// bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm.
func EmptyTreeCID() cid.Cid { return emptyNodeCID }

// rootHeight is the height argument decodeNode takes for a root, whose height
// is decided by its keys.
const rootHeight = -1

// decodeNode parses a node block strictly and checks the rules that one node
// can break on its own: exact field set and order, blessed child links,
// maximal prefix compression, keys 1..MaxKeyLen bytes and strictly
// increasing, all keys of the node's height, no children at height 0, and no
// empty node except the empty tree's root (height == rootHeight) and no root
// that is only a pointer to a child. height is the height the parent implies,
// or rootHeight. The returned node has cid and orig set to c.
func decodeNode(data []byte, height int, c cid.Cid) (*node, error) {
	d := dagcbor.NewDecoder(data)
	if err := expectMap(d, 2); err != nil {
		return nil, err
	}
	if err := expectKey(d, 'e'); err != nil {
		return nil, err
	}
	count, err := d.ReadArrayHeader()
	if err != nil {
		return nil, invalid(err)
	}
	n := &node{
		height:  height,
		entries: make([]entry, count),
		kids:    make([]link, count+1),
		cid:     c,
		orig:    c,
	}
	keys := make([]byte, 0, 2*len(data))
	var prev []byte
	for i := range n.entries {
		if err := decodeEntry(d, n, i, prev, &keys); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		prev = n.entries[i].key
	}
	// Re-slice the keys from the final buffer so earlier, outgrown buffers
	// are not kept alive.
	off := 0
	for i := range n.entries {
		l := len(n.entries[i].key)
		n.entries[i].key = keys[off : off+l : off+l]
		off += l
	}
	if err := expectKey(d, 'l'); err != nil {
		return nil, err
	}
	if n.kids[0].cid, err = readChildLink(d); err != nil {
		return nil, err
	}
	if err := d.Done(); err != nil {
		return nil, invalid(err)
	}
	return n, checkNodeShape(n, height == rootHeight)
}

// decodeEntry reads entries[i], rebuilding its full key after prev into keys.
func decodeEntry(d *dagcbor.Decoder, n *node, i int, prev []byte, keys *[]byte) error {
	if err := expectMap(d, 4); err != nil {
		return err
	}
	if err := expectKey(d, 'k'); err != nil {
		return err
	}
	suffix, err := d.ReadBytes()
	if err != nil {
		return invalid(err)
	}
	if err := expectKey(d, 'p'); err != nil {
		return err
	}
	p, err := d.ReadUint()
	if err != nil {
		return invalid(err)
	}
	if err := expectKey(d, 't'); err != nil {
		return err
	}
	if n.kids[i+1].cid, err = readChildLink(d); err != nil {
		return err
	}
	if err := expectKey(d, 'v'); err != nil {
		return err
	}
	if n.entries[i].val, err = d.ReadCID(); err != nil {
		return invalid(err)
	}
	switch {
	case p > uint64(len(prev)):
		return fmt.Errorf("%w: prefix length %d longer than the previous key (%d bytes)", ErrInvalidNode, p, len(prev))
	case int(p) < len(prev) && len(suffix) > 0 && suffix[0] == prev[p]:
		return fmt.Errorf("%w: prefix length %d is not the full shared prefix", ErrInvalidNode, p)
	case int(p)+len(suffix) == 0:
		return fmt.Errorf("%w: empty key", ErrInvalidNode)
	case int(p)+len(suffix) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrInvalidNode, int(p)+len(suffix), MaxKeyLen)
	}
	start := len(*keys)
	*keys = append(append(*keys, prev[:p]...), suffix...)
	key := (*keys)[start:]
	if i > 0 && bytes.Compare(prev, key) >= 0 {
		return fmt.Errorf("%w: key %q does not sort after %q", ErrInvalidNode, key, prev)
	}
	h := HeightForKey(key)
	if n.height == rootHeight {
		n.height = h
	} else if h != n.height {
		return fmt.Errorf("%w: key %q of height %d in a node of height %d", ErrInvalidNode, key, h, n.height)
	}
	n.entries[i].key = key
	return nil
}

// checkNodeShape checks the rules about a node's children and emptiness.
func checkNodeShape(n *node, root bool) error {
	if len(n.entries) == 0 {
		switch {
		case root && !n.kids[0].empty():
			return fmt.Errorf("%w: root is an empty node pointing to a child (not trimmed)", ErrInvalidNode)
		case root:
			n.height = 0
			return nil
		case n.kids[0].empty():
			return fmt.Errorf("%w: empty node below the root", ErrInvalidNode)
		}
	}
	if n.height == 0 {
		for _, k := range n.kids {
			if !k.empty() {
				return fmt.Errorf("%w: node of height 0 has a child", ErrInvalidNode)
			}
		}
	}
	return nil
}

func expectMap(d *dagcbor.Decoder, size int) error {
	n, err := d.ReadMapHeader()
	if err != nil {
		return invalid(err)
	}
	if n != size {
		return fmt.Errorf("%w: map of %d entries, want %d", ErrInvalidNode, n, size)
	}
	return nil
}

func expectKey(d *dagcbor.Decoder, name byte) error {
	k, err := d.ReadMapKey(nil)
	if err != nil {
		return invalid(err)
	}
	if len(k) != 1 || k[0] != name {
		return fmt.Errorf("%w: field %q where %q belongs", ErrInvalidNode, k, name)
	}
	return nil
}

// readChildLink reads "l" or "t": null, or a blessed dag-cbor CID.
func readChildLink(d *dagcbor.Decoder) (cid.Cid, error) {
	c, err := d.ReadNullableCID()
	if err != nil {
		return cid.Undef, invalid(err)
	}
	if c.Defined() && !dagcbor.IsBlessed(c, dagcbor.CodecDagCBOR) {
		return cid.Undef, fmt.Errorf("%w: child link %s is not a dag-cbor sha-256 CIDv1", ErrInvalidNode, c)
	}
	return c, nil
}

func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalidNode, err) }
