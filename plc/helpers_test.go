package plc_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type key struct {
	priv atcrypto.PrivateKey
	pub  atcrypto.PublicKey
}

func (k key) did() string { return k.pub.DIDKey() }

func newK256(t testing.TB) key {
	t.Helper()
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{priv, pub}
}

func newP256(t testing.TB) key {
	t.Helper()
	priv, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{priv, pub}
}

func sign(t testing.TB, op plc.Op, k key) plc.Op {
	t.Helper()
	if err := plc.Sign(op, k.priv); err != nil {
		t.Fatal(err)
	}
	return op
}

// genesis returns the signed genesis of an account whose rotation keys are
// rotation (highest authority first), signed by signer.
func genesis(t testing.TB, signer key, rotation ...key) (*plc.Operation, syntax.DID) {
	t.Helper()
	a := plc.Account{Handle: "alice.test", Endpoint: "https://pds.example.com", SigningKey: rotation[len(rotation)-1].pub}
	for _, k := range rotation {
		a.RotationKeys = append(a.RotationKeys, k.pub)
	}
	op, did, err := plc.CreateGenesis(a, signer.priv)
	if err != nil {
		t.Fatal(err)
	}
	return op, did
}

// update returns prev followed by changes, signed by k.
func update(t testing.TB, prev plc.Op, k key, changes ...plc.Change) *plc.Operation {
	t.Helper()
	op, err := plc.Update(prev, changes...)
	if err != nil {
		t.Fatal(err)
	}
	sign(t, op, k)
	return op
}

func entry(did syntax.DID, op plc.Op, at time.Time) plc.LogEntry {
	return plc.LogEntry{DID: did, Op: op, CID: op.CID(), CreatedAt: at}
}

func wantKind(t testing.TB, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q, want class %q", err, kind)
	}
	var ve *plc.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T is not a *plc.ValidationError", err)
	}
}

// fixture reads a shared interop fixture: ../shared/fixtures/interop/<rel>
// from the module root (the directory holding go.mod).
func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "..", "shared", "fixtures", "interop", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
