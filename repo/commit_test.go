package repo

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func testKeys(t testing.TB) map[string]atcrypto.PrivateKey {
	t.Helper()
	k256, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	p256, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]atcrypto.PrivateKey{"K-256": k256, "P-256": p256}
}

func publicKey(t testing.TB, k atcrypto.PrivateKey) atcrypto.PublicKey {
	t.Helper()
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

var testData = dagcbor.SumCBOR([]byte{0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6}) // the empty MST node

// Our encoding and signature must agree with indigo's cbor-gen Commit, an
// independent implementation of the same format.
func TestCommitAgreesWithIndigo(t *testing.T) {
	for name, key := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			c := &Commit{DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Version: 3, Data: testData, Rev: "3lbmqhtxvhs2c"}
			if err := c.Sign(key); err != nil {
				t.Fatal(err)
			}
			if len(c.Sig) != 64 {
				t.Fatalf("signature is %d bytes, want 64", len(c.Sig))
			}
			theirs := indigorepo.Commit{DID: string(c.DID), Version: 3, Data: c.Data, Rev: string(c.Rev), Sig: c.Sig}
			var buf bytes.Buffer
			if err := theirs.MarshalCBOR(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), c.Bytes()) {
				t.Fatalf("signed encoding differs from indigo's:\nours   %x\ntheirs %x", c.Bytes(), buf.Bytes())
			}
			unsigned, err := theirs.UnsignedBytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(unsigned, c.UnsignedBytes()) {
				t.Fatalf("unsigned encoding differs from indigo's")
			}
			if err := theirs.VerifySignature(publicKey(t, key)); err != nil {
				t.Fatalf("indigo rejects our signature: %v", err)
			}
			back, err := DecodeCommit(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if err := back.VerifyStructure(); err != nil {
				t.Fatal(err)
			}
			if err := back.VerifySignature(publicKey(t, key)); err != nil {
				t.Fatal(err)
			}
			if back.CID() != dagcbor.SumCBOR(buf.Bytes()) {
				t.Fatal("CID of the decoded commit differs from the CID of its bytes")
			}
		})
	}
}

func TestCommitSignatureChecks(t *testing.T) {
	keys := testKeys(t)
	key, other := keys["K-256"], keys["P-256"]
	c := &Commit{DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Version: 3, Data: testData, Rev: "3lbmqhtxvhs2c"}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(publicKey(t, other)); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key: got %v, want ErrSignature", err)
	}
	tampered := *c
	tampered.Rev = "3lbmqhtxvhs2d"
	if err := tampered.VerifySignature(publicKey(t, key)); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered rev: got %v, want ErrSignature", err)
	}
	// A DER-encoded or truncated signature is refused.
	short := *c
	short.Sig = c.Sig[:63]
	if err := short.VerifySignature(publicKey(t, key)); !errors.Is(err, ErrSignature) {
		t.Fatalf("short signature: got %v", err)
	}
}

func TestDecodeCommitStrict(t *testing.T) {
	good := (&Commit{DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Version: 3, Data: testData, Rev: "3lbmqhtxvhs2c", Sig: make([]byte, 64)}).Bytes()
	if _, err := DecodeCommit(good); err != nil {
		t.Fatalf("valid commit refused: %v", err)
	}
	enc := func(m map[string]any) []byte {
		b, err := dagcbor.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func() map[string]any {
		return map[string]any{"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "version": int64(3), "data": testData, "rev": "3lbmqhtxvhs2c", "sig": make([]byte, 64), "prev": nil}
	}
	if !bytes.Equal(enc(base()), good) {
		t.Fatal("generic encoding of the commit map differs from Commit.Bytes")
	}
	cases := map[string][]byte{
		"trailing byte": append(append([]byte{}, good...), 0x00),
		"truncated":     good[:len(good)-1],
		"not a map":     {0x80},
	}
	missingPrev := base()
	delete(missingPrev, "prev")
	cases["missing prev"] = enc(missingPrev)
	missingSig := base()
	delete(missingSig, "sig")
	cases["missing sig"] = enc(missingSig)
	extra := base()
	extra["extra"] = "x"
	cases["extra field"] = enc(extra)
	badDID := base()
	badDID["did"] = "not-a-did"
	cases["bad did"] = enc(badDID)
	badRev := base()
	badRev["rev"] = "2024-01-01"
	cases["bad rev"] = enc(badRev)
	wrongType := base()
	wrongType["version"] = "3"
	cases["version as string"] = enc(wrongType)
	// Swap "did" and "rev" entries: same content, non-canonical order.
	swapped := bytes.Replace(good, []byte("\x63did"), []byte("\x63xxx"), 1)
	swapped = bytes.Replace(swapped, []byte("\x63rev"), []byte("\x63did"), 1)
	swapped = bytes.Replace(swapped, []byte("\x63xxx"), []byte("\x63rev"), 1)
	cases["keys out of order"] = swapped
	for name, b := range cases {
		if _, err := DecodeCommit(b); !errors.Is(err, ErrMalformedCommit) {
			t.Errorf("%s: got %v, want ErrMalformedCommit", name, err)
		}
	}

	// A non-null prev decodes and round-trips.
	withPrev := base()
	withPrev["prev"] = testData
	c, err := DecodeCommit(enc(withPrev))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prev != testData || !bytes.Equal(c.Bytes(), enc(withPrev)) {
		t.Fatal("prev did not round-trip")
	}

	// Version 2 without rev decodes, but is not a valid v3 commit.
	v2 := base()
	v2["version"] = int64(2)
	delete(v2, "rev")
	c, err = DecodeCommit(enc(v2))
	if err != nil {
		t.Fatalf("v2 commit refused by the decoder: %v", err)
	}
	if err := c.VerifyStructure(); !errors.Is(err, ErrMalformedCommit) {
		t.Fatalf("v2 commit passed VerifyStructure: %v", err)
	}
	raw := base()
	raw["data"] = dagcbor.SumRaw([]byte("blob"))
	c, err = DecodeCommit(enc(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyStructure(); !errors.Is(err, ErrMalformedCommit) {
		t.Fatal("a raw-codec data CID passed VerifyStructure")
	}
}

func TestRevClockNeverGoesBackwards(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	c := NewRevClock(7)
	c.now = func() time.Time { return now }
	r1 := c.Next("")
	now = now.Add(-time.Hour) // the wall clock jumps back
	r2 := c.Next("")
	if r2 <= r1 {
		t.Fatalf("rev went backwards: %s then %s", r1, r2)
	}
	future := syntax.NewTIDFromTime(now.Add(24*time.Hour), 0)
	r3 := c.Next(future)
	if r3 <= future {
		t.Fatalf("rev %s not after the previous rev %s", r3, future)
	}
	if _, err := syntax.ParseTID(string(r3)); err != nil {
		t.Fatal(err)
	}
	if !r1.Time().Equal(start) || r1.ClockID() != 7 {
		t.Fatalf("first rev %s is %s clock %d, want %s clock 7", r1, r1.Time(), r1.ClockID(), start)
	}
}

func TestNormalizeOps(t *testing.T) {
	a := dagcbor.SumCBOR([]byte{0xa0})
	b := dagcbor.SumCBOR([]byte{0xa1, 0x61, 0x61, 0x01})
	ops := []Op{
		{Action: ActionCreate, Path: "app.bsky.feed.post/b", CID: a},
		{Action: ActionUpdate, Path: "app.bsky.feed.like/z", CID: a, Prev: b},
		{Action: ActionDelete, Path: "app.bsky.feed.post/c", Prev: b},
		{Action: ActionDelete, Path: "app.bsky.feed.like/a", Prev: b},
	}
	got, err := NormalizeOps(ops)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app.bsky.feed.like/a", "app.bsky.feed.post/c", "app.bsky.feed.like/z", "app.bsky.feed.post/b"}
	for i, op := range got {
		if op.Path != want[i] {
			t.Fatalf("order %d: %s, want %s", i, op.Path, want[i])
		}
	}
	bad := map[string]Op{
		"create with prev": {Action: ActionCreate, Path: "app.bsky.feed.post/b", CID: a, Prev: b},
		"update no prev":   {Action: ActionUpdate, Path: "app.bsky.feed.post/b", CID: a},
		"delete with cid":  {Action: ActionDelete, Path: "app.bsky.feed.post/b", CID: a, Prev: b},
		"delete no prev":   {Action: ActionDelete, Path: "app.bsky.feed.post/b"},
		"unknown action":   {Action: "upsert", Path: "app.bsky.feed.post/b", CID: a},
		"bad path":         {Action: ActionCreate, Path: "no-slash", CID: a},
		"three segments":   {Action: ActionCreate, Path: "app.bsky.feed.post/a/b", CID: a},
		"empty rkey":       {Action: ActionCreate, Path: "app.bsky.feed.post/", CID: a},
	}
	for name, op := range bad {
		if _, err := NormalizeOps([]Op{op}); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("%s: got %v, want ErrInvalidOp", name, err)
		}
	}
	dup := []Op{{Action: ActionCreate, Path: "app.bsky.feed.post/b", CID: a}, {Action: ActionDelete, Path: "app.bsky.feed.post/b", Prev: b}}
	if _, err := NormalizeOps(dup); !errors.Is(err, ErrInvalidOp) {
		t.Errorf("duplicate path accepted: %v", err)
	}
}
