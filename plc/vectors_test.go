package plc_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
)

const dholmsDID = "did:plc:yk4dd2qkboz2yv6tpubpc6co"

func loadDholms(t *testing.T) []plc.LogEntry {
	t.Helper()
	b, err := os.ReadFile("testdata/log_legacy_dholms.json")
	if err != nil {
		t.Fatal(err)
	}
	var log []plc.LogEntry
	// UnmarshalJSON fails unless each entry's cid equals the CID we compute.
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatalf("the real audit log does not parse, or a CID differs from ours: %v", err)
	}
	return log
}

// The CIDs, DID and signatures in this log were computed by the reference
// implementation: our encoding, derivation and verification must agree.
func TestRealLogWithLegacyGenesis(t *testing.T) {
	log := loadDholms(t)
	if len(log) != 5 {
		t.Fatalf("%d entries", len(log))
	}
	if _, ok := log[0].Op.(*plc.LegacyCreate); !ok {
		t.Fatalf("first operation is %T, want *plc.LegacyCreate", log[0].Op)
	}
	did, err := plc.DIDFromGenesis(log[0].Op)
	if err != nil {
		t.Fatal(err)
	}
	if did != dholmsDID {
		t.Fatalf("DID from the legacy genesis = %s, want %s", did, dholmsDID)
	}
	data, err := plc.VerifyAuditLog(dholmsDID, log)
	if err != nil {
		t.Fatalf("VerifyAuditLog of the real log: %v", err)
	}
	want := []string{"did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg", "did:key:zQ3shpKnbdPx3g3CmPf5cRVTPe1HtSwVn5ish3wSnDPQCbLJK"}
	if len(data.RotationKeys) != 2 || data.RotationKeys[0] != want[0] || data.RotationKeys[1] != want[1] {
		t.Errorf("rotation keys after replay = %v", data.RotationKeys)
	}
	if data.VerificationMethods["atproto"] != "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF" || data.AlsoKnownAs[0] != "at://dholms.xyz" {
		t.Errorf("state after replay = %+v", data)
	}
}

// Normalizing the legacy genesis gives what the reference reads: the
// recovery key first, the handle as at://, the service as atproto_pds.
func TestNormalizeLegacy(t *testing.T) {
	n := plc.Normalize(loadDholms(t)[0].Op)
	if got := n.RotationKeys; len(got) != 2 || got[0] != "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg" || got[1] != "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ" {
		t.Errorf("rotation keys %v", got)
	}
	if n.AlsoKnownAs[0] != "at://dan.bsky.social" || n.Services["atproto_pds"] != (plc.Service{Type: "AtprotoPersonalDataServer", Endpoint: "https://bsky.social"}) {
		t.Errorf("normalized = %+v", n)
	}
	for in, want := range map[string]string{"example.com": "https://example.com", "http://x.test": "http://x.test"} {
		l := &plc.LegacyCreate{Service: in}
		if got := plc.Normalize(l).Services["atproto_pds"].Endpoint; got != want {
			t.Errorf("service %q normalized to %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"bob.test": "at://bob.test", "https://bob.test": "at://bob.test", "at://bob.test": "at://bob.test"} {
		l := &plc.LegacyCreate{Handle: in}
		if got := plc.Normalize(l).AlsoKnownAs[0]; got != want {
			t.Errorf("handle %q normalized to %q, want %q", in, got, want)
		}
	}
}

// Each way of corrupting the real log is caught by the replay.
func TestVerifyAuditLogRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(log []plc.LogEntry) []plc.LogEntry
		kind   error
	}{
		{"nullified flag set", func(l []plc.LogEntry) []plc.LogEntry { l[2].Nullified = true; return l }, plc.ErrAuditLog},
		{"entry dropped", func(l []plc.LogEntry) []plc.LogEntry { return append(l[:2:2], l[3:]...) }, plc.ErrMisordered},
		{"out of order", func(l []plc.LogEntry) []plc.LogEntry { l[3].CreatedAt = l[1].CreatedAt.Add(-1); return l }, plc.ErrAuditLog},
		{"wrong DID", func(l []plc.LogEntry) []plc.LogEntry { l[1].DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"; return l }, plc.ErrAuditLog},
		{"cid mismatch", func(l []plc.LogEntry) []plc.LogEntry { l[1].CID = l[2].CID; return l }, plc.ErrAuditLog},
		{"empty", func(l []plc.LogEntry) []plc.LogEntry { return nil }, plc.ErrAuditLog},
		{"signature altered", func(l []plc.LogEntry) []plc.LogEntry {
			op := l[4].Op.(*plc.Operation)
			op.Sig = l[3].Op.Signature()
			l[4].CID = op.CID()
			return l
		}, plc.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plc.VerifyAuditLog(dholmsDID, tc.mutate(loadDholms(t)))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
		})
	}
	if _, err := plc.VerifyAuditLog(syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"), nil); !errors.Is(err, plc.ErrAuditLog) {
		t.Errorf("empty log: %v", err)
	}
}

// The W3C did:key vectors are valid rotation keys.
func TestRotationKeysFromFixtures(t *testing.T) {
	for _, file := range []string{"crypto/w3c_didkey_K256.json", "crypto/w3c_didkey_P256.json"} {
		var rows []struct {
			PublicDidKey string `json:"publicDidKey"`
		}
		if err := json.Unmarshal(fixture(t, file), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("%s: no rows", file)
		}
		for _, r := range rows {
			pub, err := plc.ParseRotationKey(r.PublicDidKey)
			if err != nil {
				t.Errorf("%s: %v", r.PublicDidKey, err)
				continue
			}
			if pub.DIDKey() != r.PublicDidKey {
				t.Errorf("%s parsed back as %s", r.PublicDidKey, pub.DIDKey())
			}
		}
	}
}

func TestLogEntryJSON(t *testing.T) {
	log := loadDholms(t)
	b, err := json.Marshal(log[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"did":"did:plc:yk4dd2qkboz2yv6tpubpc6co","operation":{"sig":"n-VWsPZY4xkFN8wlg-kJBU_yzWTNd2oBnbjkjxXu3HdjbBLaEB7K39JHIPn_DZVALKRjts6bUicjSEecZy8eIw","prev":"bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq","type":"plc_operation","services":{"atproto_pds":{"type":"AtprotoPersonalDataServer","endpoint":"https://bsky.social"}},"alsoKnownAs":["at://dholms.xyz"],"rotationKeys":["did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg","did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ"],"verificationMethods":{"atproto":"did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ"}},"cid":"bafyreiho5sanautvnw3det66jcwic4vkeabc35y7iou3ygwj2l3xqcxdau","nullified":false,"createdAt":"2023-03-06T18:47:09.501Z"}`
	if string(b) != want {
		t.Errorf("entry JSON\n got %s\nwant %s", b, want)
	}
	good := string(b)
	for name, bad := range map[string]string{
		"nullified as a string": strings.Replace(good, `"nullified":false`, `"nullified":"false"`, 1),
		"field name case":       strings.Replace(good, `"did":`, `"DID":`, 1),
		"cid of another op":     strings.Replace(good, "bafyreiho5sanautvnw3det66jcwic4vkeabc35y7iou3ygwj2l3xqcxdau", "bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq", 1),
		"bad time":              strings.Replace(good, "2023-03-06T18:47:09.501Z", "yesterday", 1),
		"not a DID":             strings.Replace(good, `"did":"did:plc:yk4dd2qkboz2yv6tpubpc6co"`, `"did":"plc"`, 1),
		"duplicate key":         strings.Replace(good, `"nullified":false`, `"nullified":false,"nullified":true`, 1),
	} {
		var e plc.LogEntry
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var e plc.LogEntry
	if err := json.Unmarshal([]byte(strings.Replace(good, `{"did"`, `{"seq":5,"did"`, 1)), &e); err != nil {
		t.Errorf("an extra field is refused: %v", err)
	}
}
