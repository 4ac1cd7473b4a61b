package loadgen

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Directory is an in-process did:plc directory for a stream's accounts:
// GET /{did} answers the DID document naming the account's key and PDS.
type Directory struct {
	ln  net.Listener
	srv *http.Server

	mu   sync.RWMutex
	keys map[string]string // DID → public key multibase
	pds  string
}

// NewDirectory starts a directory on 127.0.0.1 (a free port) for
// accounts, whose PDS is pds (a Host's URL).
func NewDirectory(accounts []Account, pds string) (*Directory, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadgen: directory: %w", err)
	}
	d := &Directory{ln: ln, keys: make(map[string]string, len(accounts)), pds: pds}
	for _, a := range accounts {
		d.keys[a.DID] = a.Key
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve), ReadHeaderTimeout: 10 * time.Second}
	go d.srv.Serve(ln)
	return d, nil
}

// URL is the directory's root (a --plc-url / --plc-host).
func (d *Directory) URL() string { return "http://" + d.ln.Addr().String() }

// SetPDS changes the PDS endpoint of every account.
func (d *Directory) SetPDS(pds string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pds = pds
}

// Close stops the directory.
func (d *Directory) Close() error { return d.srv.Close() }

// Document returns the DID document of did, or false.
func (d *Directory) Document(did string) ([]byte, bool) {
	d.mu.RLock()
	key, ok := d.keys[did]
	pds := d.pds
	d.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return fmt.Appendf(nil, `{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1"],"id":%q,"alsoKnownAs":[],`+
		`"verificationMethod":[{"id":"%s#atproto","type":"Multikey","controller":%q,"publicKeyMultibase":%q}],`+
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":%q}]}`, did, did, did, key, pds), true
}

func (d *Directory) serve(w http.ResponseWriter, r *http.Request) {
	did := strings.TrimPrefix(r.URL.Path, "/")
	doc, ok := d.Document(did)
	if r.Method != http.MethodGet || !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "DID not registered: " + did})
		return
	}
	w.Header().Set("Content-Type", "application/did+ld+json")
	w.Write(doc)
}
