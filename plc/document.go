package plc

import (
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DocumentData is the state of a DID after an operation, as a directory
// serves it at /{did}/data.
type DocumentData struct {
	DID                 syntax.DID         `json:"did"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	RotationKeys        []string           `json:"rotationKeys"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
}

// Data returns the state op leaves did in, or nil if op is a tombstone.
func Data(did syntax.DID, op Op) *DocumentData {
	n := Normalize(op)
	if n == nil {
		return nil
	}
	return &DocumentData{
		DID:                 did,
		VerificationMethods: n.VerificationMethods,
		RotationKeys:        n.RotationKeys,
		AlsoKnownAs:         n.AlsoKnownAs,
		Services:            n.Services,
	}
}

// MarshalJSON writes the data with map keys in canonical order.
func (d *DocumentData) MarshalJSON() ([]byte, error) {
	b := append([]byte(nil), `{"did":`...)
	b = appendJSONString(b, d.DID.String())
	b = append(b, `,"verificationMethods":`...)
	b = appendJSONStringMap(b, d.VerificationMethods)
	b = append(b, `,"rotationKeys":`...)
	b = appendJSONStrings(b, d.RotationKeys)
	b = append(b, `,"alsoKnownAs":`...)
	b = appendJSONStrings(b, d.AlsoKnownAs)
	b = append(b, `,"services":`...)
	b = appendServicesJSON(b, d.Services)
	return append(b, '}'), nil
}

// DIDDocument is the W3C DID document a directory serves at /{did}.
type DIDDocument struct {
	Context            []string             `json:"@context"`
	ID                 syntax.DID           `json:"id"`
	AlsoKnownAs        []string             `json:"alsoKnownAs"`
	VerificationMethod []VerificationMethod `json:"verificationMethod"`
	Service            []DocService         `json:"service"`
}

// VerificationMethod is a key of a DID document, in Multikey form.
type VerificationMethod struct {
	ID                 string     `json:"id"`   // "<did>#<id>"
	Type               string     `json:"type"` // "Multikey"
	Controller         syntax.DID `json:"controller"`
	PublicKeyMultibase string     `json:"publicKeyMultibase"` // the did:key without "did:key:"
}

// DocService is a service of a DID document.
type DocService struct {
	ID              string `json:"id"` // "#<id>"
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

// Document renders the DID document as the reference directory does: the
// DID and Multikey contexts plus the suite context of each K-256 or P-256
// key; verification methods with id "<did>#<id>"; services with id
// "#<id>". Map entries come out in canonical key order.
func (d *DocumentData) Document() *DIDDocument {
	doc := &DIDDocument{
		Context:            []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"},
		ID:                 d.DID,
		AlsoKnownAs:        append([]string{}, d.AlsoKnownAs...),
		VerificationMethod: []VerificationMethod{},
		Service:            []DocService{},
	}
	for _, id := range sortedKeys(d.VerificationMethods) {
		key := d.VerificationMethods[id]
		if c := keyContext(key); c != "" && !contains(doc.Context, c) {
			doc.Context = append(doc.Context, c)
		}
		doc.VerificationMethod = append(doc.VerificationMethod, VerificationMethod{
			ID:                 d.DID.String() + "#" + id,
			Type:               "Multikey",
			Controller:         d.DID,
			PublicKeyMultibase: strings.TrimPrefix(key, "did:key:"),
		})
	}
	for _, id := range sortedKeys(d.Services) {
		s := d.Services[id]
		doc.Service = append(doc.Service, DocService{ID: "#" + id, Type: s.Type, ServiceEndpoint: s.Endpoint})
	}
	return doc
}
