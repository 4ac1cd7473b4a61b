package store

import (
	"encoding/binary"

	"github.com/ipfs/go-cid"
)

// Tables: the first byte of every key. The layout is documented in doc.go.
const (
	tMeta       byte = 0x00
	tAccount    byte = 0x01 // did → account
	tUID        byte = 0x02 // uid → did
	tHead       byte = 0x03 // uid → head
	tBlock      byte = 0x04 // uid cid → rev data          (live blocks)
	_           byte = 0x05 // unused (was a rev index of live blocks)
	tHistIndex  byte = 0x06 // uid cid died → ∅             (superseded blocks: where)
	tHistory    byte = 0x07 // died uid cid → data          (superseded blocks, by time)
	tRecord     byte = 0x08 // uid collection/rkey → ∅
	tRefCount   byte = 0x09 // uid cid → count, when above one (record CIDs)
	tCollCount  byte = 0x0a // uid collection → count
	tCollIndex  byte = 0x0b // collection 0x00 uid → ∅
	tEvent      byte = 0x0c // seq → time frame
	tEventByUID byte = 0x0d // uid seq → ∅
	tSecret     byte = 0x0e // uid → signing secrets of hosted accounts
	tBlob       byte = 0x0f // uid cid → blob metadata
	tHandle     byte = 0x10 // handle → did
	tCollRepos  byte = 0x11 // collection → repository count
	tStatus     byte = 0x12 // uid → status                (accounts not plainly active)
)

var (
	metaSeq = []byte{tMeta, 's', 'e', 'q'}
	metaUID = []byte{tMeta, 'u', 'i', 'd'}
	// metaCollIndex holds the version of the collection index tables (0a,
	// 0b, 11, 12) the store was last built or rebuilt with.
	metaCollIndex = []byte{tMeta, 'c', 'o', 'l', 'l', 'i', 'd', 'x'}
	// metaHistory holds the layout version of tables 06 and 07 (history.go).
	metaHistory = []byte{tMeta, 'h', 'i', 's', 't', 'o', 'r', 'y'}
)

// revLen is the length of a TID rev.
const revLen = 13

func appendUID(b []byte, uid uint64) []byte { return binary.BigEndian.AppendUint64(b, uid) }

func uidKey(table byte, uid uint64) []byte { return appendUID([]byte{table}, uid) }

func keyUIDString(table byte, uid uint64, s string) []byte {
	b := make([]byte, 0, 9+len(s))
	b = append(b, table)
	b = appendUID(b, uid)
	return append(b, s...)
}

func keyUIDCID(table byte, uid uint64, c cid.Cid) []byte {
	return keyUIDString(table, uid, c.KeyString())
}

// appendKeyUIDCID appends keyUIDCID(table, uid, c) to b.
func appendKeyUIDCID(b []byte, table byte, uid uint64, c cid.Cid) []byte {
	b = appendUID(append(b, table), uid)
	return append(b, c.KeyString()...)
}

func accountKey(did string) []byte { return append([]byte{tAccount}, did...) }

// appendHistoryKey appends the key of a superseded block's copy, table
// 07: died uid cid.
func appendHistoryKey(b []byte, died int64, uid uint64, c cid.Cid) []byte {
	b = binary.BigEndian.AppendUint64(append(b, tHistory), uint64(died))
	b = appendUID(b, uid)
	return append(b, c.KeyString()...)
}

// appendHistIndexKey appends the key of a superseded block's index entry,
// table 06: uid cid died.
func appendHistIndexKey(b []byte, uid uint64, c cid.Cid, died int64) []byte {
	b = appendKeyUIDCID(b, tHistIndex, uid, c)
	return binary.BigEndian.AppendUint64(b, uint64(died))
}

func collIndexKey(collection string, uid uint64) []byte {
	b := make([]byte, 0, len(collection)+10)
	b = append(b, tCollIndex)
	b = append(b, collection...)
	b = append(b, 0)
	return appendUID(b, uid)
}

func eventKey(seq int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tEvent}, uint64(seq))
}

func eventByUIDKey(uid uint64, seq int64) []byte {
	return binary.BigEndian.AppendUint64(uidKey(tEventByUID, uid), uint64(seq))
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

func handleKey(handle string) []byte { return append([]byte{tHandle}, handle...) }
