package plc_test

import (
	"encoding/json"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/reservoir-atproto/reservoir/plc"
)

// The DID document of the spec's example, with a second, P-256 key and an
// ed25519 key (no suite context for that one). Keys come in canonical
// order (ed, zz, atproto), and each curve's context where it first appears.
func TestDocument(t *testing.T) {
	const (
		k256 = "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
		p256 = "did:key:zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7"
		ed   = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
	)
	data := &plc.DocumentData{
		DID:                 "did:plc:7iza6de2dwap2sbkpav7c6c6",
		VerificationMethods: map[string]string{"atproto": k256, "zz": p256, "ed": ed},
		RotationKeys:        []string{p256},
		AlsoKnownAs:         []string{"at://alice.test"},
		Services: map[string]plc.Service{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://example.test"},
		},
	}
	got, err := json.Marshal(data.Document())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1","https://w3id.org/security/suites/ecdsa-2019/v1","https://w3id.org/security/suites/secp256k1-2019/v1"],` +
		`"id":"did:plc:7iza6de2dwap2sbkpav7c6c6","alsoKnownAs":["at://alice.test"],"verificationMethod":[` +
		`{"id":"did:plc:7iza6de2dwap2sbkpav7c6c6#ed","type":"Multikey","controller":"did:plc:7iza6de2dwap2sbkpav7c6c6","publicKeyMultibase":"z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},` +
		`{"id":"did:plc:7iza6de2dwap2sbkpav7c6c6#zz","type":"Multikey","controller":"did:plc:7iza6de2dwap2sbkpav7c6c6","publicKeyMultibase":"zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7"},` +
		`{"id":"did:plc:7iza6de2dwap2sbkpav7c6c6#atproto","type":"Multikey","controller":"did:plc:7iza6de2dwap2sbkpav7c6c6","publicKeyMultibase":"zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],` +
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://example.test"}]}`
	if string(got) != want {
		t.Errorf("document\n got %s\nwant %s", got, want)
	}
	dataJSON, _ := json.Marshal(data)
	wantData := `{"did":"did:plc:7iza6de2dwap2sbkpav7c6c6","verificationMethods":{"ed":"` + ed + `","zz":"` + p256 + `","atproto":"` + k256 + `"},` +
		`"rotationKeys":["` + p256 + `"],"alsoKnownAs":["at://alice.test"],"services":{"atproto_pds":{"type":"AtprotoPersonalDataServer","endpoint":"https://example.test"}}}`
	if string(dataJSON) != wantData {
		t.Errorf("data\n got %s\nwant %s", dataJSON, wantData)
	}
	var back plc.DocumentData
	if err := json.Unmarshal(dataJSON, &back); err != nil || back.VerificationMethods["zz"] != p256 || back.Services["atproto_pds"].Endpoint != "https://example.test" {
		t.Errorf("data does not read back: %+v, %v", back, err)
	}
}

// The atproto view of a document: what indigo's identity code looks for.
func TestGenesisDocumentForAtproto(t *testing.T) {
	signing, rot := newK256(t), newP256(t)
	op, did, err := plc.CreateGenesis(plc.Account{
		Handle: "Alice.Example.COM", Endpoint: "https://pds.example.com", SigningKey: signing.pub, RotationKeys: []atcrypto.PublicKey{rot.pub},
	}, rot.priv)
	if err != nil {
		t.Fatal(err)
	}
	doc := plc.Data(did, op).Document()
	if doc.AlsoKnownAs[0] != "at://alice.example.com" {
		t.Errorf("handle not normalized: %v", doc.AlsoKnownAs)
	}
	vm := doc.VerificationMethod[0]
	if vm.ID != did.String()+"#atproto" || vm.Controller != did || "did:key:"+vm.PublicKeyMultibase != signing.did() {
		t.Errorf("verification method %+v", vm)
	}
	if s := doc.Service[0]; s.ID != "#atproto_pds" || s.Type != "AtprotoPersonalDataServer" || s.ServiceEndpoint != "https://pds.example.com" {
		t.Errorf("service %+v", s)
	}
	if _, _, err := plc.CreateGenesis(plc.Account{Handle: "a.test", Endpoint: "https://p", SigningKey: signing.pub, RotationKeys: []atcrypto.PublicKey{rot.pub}}, signing.priv); err == nil {
		t.Error("CreateGenesis signed by a key that is not a rotation key")
	}
	if _, err := plc.NewGenesis(plc.Account{Handle: "a.test", SigningKey: signing.pub}); err == nil {
		t.Error("NewGenesis without rotation keys")
	}
}
