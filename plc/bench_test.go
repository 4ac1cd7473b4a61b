package plc_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/plc"
)

func BenchmarkParseOp(b *testing.B) {
	k := newK256(b)
	g, _ := genesis(b, k, k, newP256(b))
	js, _ := g.MarshalJSON()
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plc.ParseOp(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCID(b *testing.B) {
	k := newK256(b)
	g, _ := genesis(b, k, k, newP256(b))
	b.ReportAllocs()
	for b.Loop() {
		g.CID()
	}
}

// BenchmarkValidateUpdate is what a directory does per submitted update:
// constraints, the log lookup, one signature verification per curve.
func BenchmarkValidateUpdate(b *testing.B) {
	for _, curve := range []string{"k256", "p256"} {
		b.Run(curve, func(b *testing.B) {
			k := newK256(b)
			if curve == "p256" {
				k = newP256(b)
			}
			g, did := genesis(b, k, k)
			log := []plc.LogEntry{entry(did, g, t0)}
			u := update(b, g, k, plc.SetHandle("bob.test"))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plc.Validate(did, log, u, t0.Add(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	k := newK256(b)
	g, _ := genesis(b, k, k)
	b.ReportAllocs()
	for b.Loop() {
		if err := plc.Sign(g, k.priv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAuditLog replays the real 5-entry log of testdata.
func BenchmarkVerifyAuditLog(b *testing.B) {
	data, err := os.ReadFile("testdata/log_legacy_dholms.json")
	if err != nil {
		b.Fatal(err)
	}
	var log []plc.LogEntry
	if err := json.Unmarshal(data, &log); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plc.VerifyAuditLog(dholmsDID, log); err != nil {
			b.Fatal(err)
		}
	}
}
