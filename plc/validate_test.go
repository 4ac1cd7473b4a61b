package plc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/reservoir-atproto/reservoir/plc"
)

func TestValidateGenesisAndUpdates(t *testing.T) {
	for _, k := range []key{newK256(t), newP256(t)} {
		g, did := genesis(t, k, k)
		if !plc.IsPLC(did.String()) {
			t.Fatalf("derived DID %s does not have did:plc syntax", did)
		}
		acc, err := plc.Validate(did, nil, g, t0)
		if err != nil {
			t.Fatalf("genesis refused: %v", err)
		}
		if acc.Prev.Defined() || len(acc.Nullified) != 0 {
			t.Errorf("genesis Accepted = %+v", acc)
		}
		log := []plc.LogEntry{entry(did, g, t0)}
		newSigning := newP256(t)
		u := update(t, g, k, plc.SetHandle("bob.test"), plc.SetSigningKey(newSigning.pub), plc.SetEndpoint("https://other.example"))
		acc, err = plc.Validate(did, log, u, t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("update refused: %v", err)
		}
		if !acc.Prev.Equals(g.CID()) {
			t.Errorf("Prev = %s, want the genesis CID", acc.Prev)
		}
		d := plc.Data(did, u)
		if d.AlsoKnownAs[0] != "at://bob.test" || d.VerificationMethods["atproto"] != newSigning.did() || d.Services["atproto_pds"].Endpoint != "https://other.example" {
			t.Errorf("state after update = %+v", d)
		}
		// Rotate to a new key; from then on only it may sign.
		next := newK256(t)
		rot := update(t, u, k, plc.SetRotationKeys(next.pub))
		log = append(log, entry(did, u, t0.Add(time.Minute)))
		if _, err := plc.Validate(did, log, rot, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("rotation refused: %v", err)
		}
		log = append(log, entry(did, rot, t0.Add(2*time.Minute)))
		_, err = plc.Validate(did, log, update(t, rot, k, plc.SetHandle("eve.test")), t0.Add(3*time.Minute))
		wantKind(t, err, plc.ErrBadSignature)
		ts := sign(t, plc.NewTombstone(rot), next)
		if _, err := plc.Validate(did, log, ts, t0.Add(3*time.Minute)); err != nil {
			t.Fatalf("tombstone by the new key refused: %v", err)
		}
	}
}

// didKeyOf builds a did:key from a multicodec prefix and key bytes.
func didKeyOf(prefix []byte, keyBytes []byte) string {
	return "did:key:z" + base58.Encode(append(append([]byte{}, prefix...), keyBytes...))
}

// Every kind of invalid operation is refused with its class.
func TestValidateRejects(t *testing.T) {
	k, low := newK256(t), newP256(t)
	g, did := genesis(t, k, k, low)
	log := []plc.LogEntry{entry(did, g, t0)}
	now := t0.Add(time.Hour)
	stranger := newK256(t)
	ed25519Key := didKeyOf([]byte{0xed, 0x01}, make([]byte, 32))
	uncompressed := didKeyOf([]byte{0xe7, 0x01}, k.pub.UncompressedBytes())
	change := func(f func(*plc.Operation)) plc.Change { return f }
	many := func(n int, f func(i int) string) []string {
		var out []string
		for i := range n {
			out = append(out, f(i))
		}
		return out
	}

	cases := []struct {
		name string
		log  []plc.LogEntry
		op   func() plc.Op
		kind error
	}{
		{"bad signature", log, func() plc.Op {
			u := update(t, g, k, plc.SetHandle("bob.test"))
			u.AlsoKnownAs[0] = "at://mallory.test" // after signing
			return u
		}, plc.ErrBadSignature},
		{"signed by a key that is not a rotation key of prev", log, func() plc.Op {
			return update(t, g, stranger, plc.SetHandle("bob.test"))
		}, plc.ErrBadSignature},
		{"signed by a rotation key the operation itself adds", log, func() plc.Op {
			return update(t, g, stranger, plc.SetRotationKeys(stranger.pub))
		}, plc.ErrBadSignature},
		{"prev names no operation of the DID", log, func() plc.Op {
			other, _ := genesis(t, k, k)
			return update(t, other, k)
		}, plc.ErrMisordered},
		{"prev null on an existing DID", log, func() plc.Op {
			u := update(t, g, k)
			u.Prev = ""
			return sign(t, u, k)
		}, plc.ErrMisordered},
		{"genesis for the wrong DID", nil, func() plc.Op {
			other, _ := genesis(t, k, k, low)
			other.AlsoKnownAs = []string{"at://someone.else"}
			return sign(t, other, k)
		}, plc.ErrDIDMismatch},
		{"genesis not signed by its own rotation keys", nil, func() plc.Op {
			return sign(t, g.Clone(), stranger)
		}, plc.ErrBadSignature},
		{"genesis with a prev", nil, func() plc.Op { return update(t, g, k) }, plc.ErrMisordered},
		{"tombstone as genesis", nil, func() plc.Op { return sign(t, plc.NewTombstone(g), k) }, plc.ErrMisordered},
		{"legacy create submitted", nil, func() plc.Op {
			return sign(t, &plc.LegacyCreate{SigningKey: k.did(), RecoveryKey: k.did(), Handle: "a.test", Service: "https://p.test"}, k)
		}, plc.ErrMalformed},
		{"malformed did:key rotation key", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys = append(o.RotationKeys, "did:key:notbase58!") }))
		}, plc.ErrBadKey},
		{"rotation key without did:key prefix", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys[1] = strings.TrimPrefix(o.RotationKeys[1], "did:key:") }))
		}, plc.ErrBadKey},
		{"ed25519 rotation key", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys = append(o.RotationKeys, ed25519Key) }))
		}, plc.ErrBadKey},
		{"uncompressed rotation key", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys[0] = uncompressed }))
		}, plc.ErrBadKey},
		{"malformed verification method", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.VerificationMethods["atproto"] = "did:web:example.com" }))
		}, plc.ErrBadKey},
		{"verification method not base58", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.VerificationMethods["atproto"] = "did:key:z0OIl" }))
		}, plc.ErrBadKey},
		{"oversize operation", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				for i := range 9 {
					o.Services[fmt.Sprint("svc", i)] = plc.Service{Type: strings.Repeat("T", 256), Endpoint: "https://example.com/" + strings.Repeat("p", 200)}
				}
			}))
		}, plc.ErrTooLarge},
		{"no rotation keys", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys = nil }))
		}, plc.ErrLimit},
		{"six rotation keys", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				o.RotationKeys = many(6, func(int) string { return newK256(t).did() })
			}))
		}, plc.ErrLimit},
		{"duplicate rotation keys", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.RotationKeys = []string{k.did(), k.did()} }))
		}, plc.ErrLimit},
		{"eleven alsoKnownAs", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				o.AlsoKnownAs = many(11, func(i int) string { return fmt.Sprintf("at://h%d.test", i) })
			}))
		}, plc.ErrLimit},
		{"alsoKnownAs too long", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.AlsoKnownAs = []string{"at://" + strings.Repeat("a", 254)} }))
		}, plc.ErrLimit},
		{"alsoKnownAs too long in UTF-16 units", log, func() plc.Op {
			// 129 emoji: 516 bytes, 258 UTF-16 units, +5 for at://.
			return update(t, g, k, change(func(o *plc.Operation) { o.AlsoKnownAs = []string{"at://" + strings.Repeat("😀", 127)} }))
		}, plc.ErrLimit},
		{"duplicate alsoKnownAs", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.AlsoKnownAs = []string{"at://a.test", "at://a.test"} }))
		}, plc.ErrLimit},
		{"eleven services", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				for i := range 11 {
					o.Services[fmt.Sprint("s", i)] = plc.Service{Type: "T", Endpoint: "https://e.test"}
				}
			}))
		}, plc.ErrLimit},
		{"service id too long", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				o.Services[strings.Repeat("s", 33)] = plc.Service{Type: "T", Endpoint: "https://e.test"}
			}))
		}, plc.ErrLimit},
		{"service type too long", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				o.Services["s"] = plc.Service{Type: strings.Repeat("T", 257), Endpoint: "https://e.test"}
			}))
		}, plc.ErrLimit},
		{"service endpoint too long", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				o.Services["s"] = plc.Service{Type: "T", Endpoint: "https://e.test/" + strings.Repeat("p", 500)}
			}))
		}, plc.ErrLimit},
		{"eleven verification methods", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) {
				for i := range 11 {
					o.VerificationMethods[fmt.Sprint("v", i)] = k.did()
				}
			}))
		}, plc.ErrLimit},
		{"verification method id too long", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.VerificationMethods[strings.Repeat("v", 33)] = k.did() }))
		}, plc.ErrLimit},
		{"invalid UTF-8", log, func() plc.Op {
			return update(t, g, k, change(func(o *plc.Operation) { o.AlsoKnownAs = []string{"at://\xff.test"} }))
		}, plc.ErrMalformed},
	}
	for _, ep := range []string{"pds.example.com", "ftp://pds.example.com", "https://", "https://user:pw@pds.example.com", "https://pds.example.com/a b", "mailto:a@b.c", "https:pds.example.com", "//pds.example.com"} {
		cases = append(cases, struct {
			name string
			log  []plc.LogEntry
			op   func() plc.Op
			kind error
		}{"endpoint " + ep, log, func() plc.Op { return update(t, g, k, plc.SetEndpoint(ep)) }, plc.ErrBadEndpoint})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plc.Validate(did, tc.log, tc.op(), now)
			wantKind(t, err, tc.kind)
			t.Log(err)
		})
	}

	// What the limits allow, and what only verification methods may hold.
	ok := map[string]plc.Op{
		"ed25519 verification method": update(t, g, k, change(func(o *plc.Operation) { o.VerificationMethods["other"] = ed25519Key })),
		"five rotation keys": update(t, g, k, change(func(o *plc.Operation) {
			o.RotationKeys = many(5, func(int) string { return newP256(t).did() })
		})),
		"ten of everything": update(t, g, k, change(func(o *plc.Operation) {
			o.AlsoKnownAs = many(10, func(i int) string { return fmt.Sprintf("at://h%d.test", i) })
			for i := range 9 {
				o.Services[fmt.Sprint("s", i)] = plc.Service{Type: "T", Endpoint: "http://localhost:2583"}
				o.VerificationMethods[fmt.Sprint("v", i)] = k.did()
			}
		})),
		"alsoKnownAs of exactly 258": update(t, g, k, change(func(o *plc.Operation) { o.AlsoKnownAs = []string{"at://" + strings.Repeat("a", 253)} })),
		"no services":                update(t, g, k, change(func(o *plc.Operation) { o.Services = nil })),
	}
	for name, op := range ok {
		if _, err := plc.Validate(did, log, op, now); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

func TestTombstoneEndsTheLog(t *testing.T) {
	k := newK256(t)
	g, did := genesis(t, k, k)
	ts := sign(t, plc.NewTombstone(g), k)
	log := []plc.LogEntry{entry(did, g, t0), entry(did, ts, t0.Add(time.Minute))}
	// An operation after the tombstone, however signed.
	after := sign(t, &plc.Operation{RotationKeys: []string{k.did()}, VerificationMethods: map[string]string{}, Services: map[string]plc.Service{}, Prev: ts.CID().String()}, k)
	_, err := plc.Validate(did, log, after, t0.Add(2*time.Minute))
	wantKind(t, err, plc.ErrTombstoned)
	second := sign(t, &plc.Tombstone{Prev: ts.CID().String()}, k)
	_, err = plc.Validate(did, log, second, t0.Add(2*time.Minute))
	wantKind(t, err, plc.ErrTombstoned)
	if _, err := plc.Update(ts); err == nil {
		t.Error("Update after a tombstone succeeded")
	}
	if plc.Data(did, ts) != nil {
		t.Error("a tombstoned DID has data")
	}
}

// The recovery rules: a key listed before the one that signed the first
// operation to undo may fork the log at an earlier operation, within 72 h.
func TestRecovery(t *testing.T) {
	recovery, rotation := newK256(t), newP256(t)
	g, did := genesis(t, rotation, recovery, rotation) // recovery has priority
	u1 := update(t, g, rotation, plc.SetHandle("hijacked.test"))
	u2 := update(t, u1, rotation, plc.SetEndpoint("https://evil.example"))
	log := []plc.LogEntry{entry(did, g, t0), entry(did, u1, t0.Add(time.Hour)), entry(did, u2, t0.Add(2*time.Hour))}
	fix := update(t, g, recovery, plc.SetRotationKeys(recovery.pub))

	t.Run("accepted inside the window", func(t *testing.T) {
		for _, at := range []time.Duration{time.Minute, 71 * time.Hour, plc.RecoveryWindow} {
			acc, err := plc.Validate(did, log, fix, t0.Add(time.Hour+at))
			if err != nil {
				t.Fatalf("%s after the first undone operation: %v", at, err)
			}
			if !acc.Prev.Equals(g.CID()) || len(acc.Nullified) != 2 || !acc.Nullified[0].Equals(u1.CID()) || !acc.Nullified[1].Equals(u2.CID()) {
				t.Fatalf("Accepted = %+v, want prev genesis and u1, u2 nullified", acc)
			}
		}
	})
	t.Run("refused after the window", func(t *testing.T) {
		_, err := plc.Validate(did, log, fix, t0.Add(time.Hour+plc.RecoveryWindow+time.Millisecond))
		wantKind(t, err, plc.ErrLateRecovery)
	})
	t.Run("refused from a key of equal authority", func(t *testing.T) {
		_, err := plc.Validate(did, log, update(t, g, rotation, plc.SetHandle("other.test")), t0.Add(3*time.Hour))
		wantKind(t, err, plc.ErrBadSignature)
	})
	t.Run("refused from a key of lower authority", func(t *testing.T) {
		// The recovery key signed the operation to undo; rotation is weaker.
		r1 := update(t, g, recovery, plc.SetHandle("recovered.test"))
		l := []plc.LogEntry{entry(did, g, t0), entry(did, r1, t0.Add(time.Hour))}
		_, err := plc.Validate(did, l, update(t, g, rotation, plc.SetHandle("x.test")), t0.Add(2*time.Hour))
		wantKind(t, err, plc.ErrBadSignature)
		// Nor can the top key fork over its own operation: nothing ranks above it.
		_, err = plc.Validate(did, l, update(t, g, recovery, plc.SetHandle("y.test")), t0.Add(2*time.Hour))
		wantKind(t, err, plc.ErrBadSignature)
	})
	t.Run("fork at a later operation nullifies only what follows", func(t *testing.T) {
		fix2 := update(t, u1, recovery, plc.SetEndpoint("https://good.example"))
		acc, err := plc.Validate(did, log, fix2, t0.Add(3*time.Hour))
		if err != nil || len(acc.Nullified) != 1 || !acc.Nullified[0].Equals(u2.CID()) {
			t.Fatalf("Accepted = %+v, %v; want u2 nullified", acc, err)
		}
	})
	t.Run("nullified operations are no longer prev", func(t *testing.T) {
		l := slices.Clone(log)
		l[1].Nullified, l[2].Nullified = true, true
		l = append(l, entry(did, fix, t0.Add(3*time.Hour)))
		_, err := plc.Validate(did, l, update(t, u2, rotation), t0.Add(4*time.Hour))
		wantKind(t, err, plc.ErrMisordered)
		if _, err := plc.Validate(did, l, update(t, fix, recovery), t0.Add(4*time.Hour)); err != nil {
			t.Fatalf("update after the recovery refused: %v", err)
		}
	})
	t.Run("a tombstone can be undone", func(t *testing.T) {
		ts := sign(t, plc.NewTombstone(g), rotation)
		l := []plc.LogEntry{entry(did, g, t0), entry(did, ts, t0.Add(time.Hour))}
		acc, err := plc.Validate(did, l, fix, t0.Add(2*time.Hour))
		if err != nil || len(acc.Nullified) != 1 || !acc.Nullified[0].Equals(ts.CID()) {
			t.Fatalf("recovery over a tombstone: %+v, %v", acc, err)
		}
	})
	t.Run("replay agrees", func(t *testing.T) {
		l := slices.Clone(log)
		l[1].Nullified, l[2].Nullified = true, true
		l = append(l, entry(did, fix, t0.Add(3*time.Hour)))
		data, err := plc.VerifyAuditLog(did, l)
		if err != nil {
			t.Fatalf("VerifyAuditLog: %v", err)
		}
		if len(data.RotationKeys) != 1 || data.RotationKeys[0] != recovery.did() || data.AlsoKnownAs[0] != "at://alice.test" {
			t.Errorf("state after recovery = %+v", data)
		}
		l[1].Nullified = false
		if _, err := plc.VerifyAuditLog(did, l); err == nil {
			t.Error("replay accepted a log whose nullified flags are wrong")
		}
		late := slices.Clone(l)
		late[1].Nullified = true
		late[3].CreatedAt = t0.Add(time.Hour + plc.RecoveryWindow + time.Second)
		_, err = plc.VerifyAuditLog(did, late)
		wantKind(t, err, plc.ErrLateRecovery)
	})
}

func TestIsPLC(t *testing.T) {
	for s, want := range map[string]bool{
		"did:plc:yk4dd2qkboz2yv6tpubpc6co":  true,
		"did:plc:yk4dd2qkboz2yv6tpubpc6c":   false,
		"did:plc:yk4dd2qkboz2yv6tpubpc6coo": false,
		"did:plc:YK4DD2QKBOZ2YV6TPUBPC6CO":  false,
		"did:plc:yk4dd2qkboz2yv6tpubpc618":  false,
		"did:web:yk4dd2qkboz2yv6tpubpc6co":  false,
	} {
		if got := plc.IsPLC(s); got != want {
			t.Errorf("IsPLC(%q) = %t", s, got)
		}
	}
	if _, err := plc.DIDFromGenesis(&plc.Tombstone{Prev: validPrev, Sig: "x"}); err == nil {
		t.Error("DID from a tombstone")
	}
	k := newK256(t)
	g, _ := genesis(t, k, k)
	g.Sig = ""
	if _, err := plc.DIDFromGenesis(g); err == nil {
		t.Error("DID from an unsigned genesis")
	}
}
