package interop

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/plc"
)

// refRepo is a repository built by @atproto/repo, as the harness describes it.
type refRepo struct {
	Name    string `json:"name"`
	DID     string `json:"did"`
	File    string `json:"file"`
	Root    string `json:"root"`
	Data    string `json:"data"`
	Rev     string `json:"rev"`
	Records []struct {
		Collection string `json:"collection"`
		RKey       string `json:"rkey"`
		CID        string `json:"cid"`
	} `json:"records"`
	JSON  map[string]jsonRaw `json:"json"`
	Blobs []struct {
		CID      string `json:"cid"`
		MimeType string `json:"mimeType"`
		Size     int    `json:"size"`
		File     string `json:"file"`
	} `json:"blobs"`
	Absent []struct {
		Collection string `json:"collection"`
		RKey       string `json:"rkey"`
	} `json:"absent"`
}

type jsonRaw []byte

func (j *jsonRaw) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

// proofClaim is a sync.getRecord answer with what it must prove: the
// record's CID, or (CID empty) its absence.
type proofClaim struct {
	Collection string  `json:"collection"`
	RKey       string  `json:"rkey"`
	CID        *string `json:"cid"`
	CAR        string  `json:"car"`
}

// verifyProofs has the reference check each proof against the key the
// directory gives for did.
func verifyProofs(t *testing.T, e *env, did string, proofs []proofClaim) {
	t.Helper()
	var out struct {
		Key     string `json:"key"`
		Results []struct {
			Verified bool   `json:"verified"`
			Error    string `json:"error"`
		} `json:"results"`
	}
	runNode(t, "verify-proofs", map[string]any{"plcUrl": e.plc, "did": did, "proofs": proofs}, &out)
	if len(out.Results) != len(proofs) {
		t.Fatalf("verify-proofs: %d results for %d proofs", len(out.Results), len(proofs))
	}
	for i, r := range out.Results {
		if !r.Verified {
			what := "absence"
			if proofs[i].CID != nil {
				what = "record " + *proofs[i].CID
			}
			t.Errorf("sync.getRecord %s/%s: the reference's verifyProofs (key %s) does not verify the proof of %s: %s",
				proofs[i].Collection, proofs[i].RKey, out.Key, what, firstLine(r.Error))
		}
	}
}

func firstLine(s string) string {
	if s == "" {
		return "its claim is unverified"
	}
	line, _, _ := strings.Cut(s, "\n    at ")
	return line
}

// getRecordProof fetches sync.getRecord's CAR for a path.
func (e *env) getRecordProof(t *testing.T, did, collection, rkey string, want *string) proofClaim {
	t.Helper()
	b := e.get(t, "com.atproto.sync.getRecord", url.Values{"did": {did}, "collection": {collection}, "rkey": {rkey}})
	return proofClaim{Collection: collection, RKey: rkey, CID: want, CAR: b64(b)}
}

// TestReferenceReposServedByUs is check 1: repositories made by the
// reference, imported by reservoir, served back unchanged.
func TestReferenceReposServedByUs(t *testing.T) {
	needNode(t)
	e := newEnv(t)
	ctx := context.Background()
	shapes := []string{"empty", "small", "large", "datamodel"}

	var keys struct {
		Libraries map[string]string `json:"libraries"`
		Keys      []struct {
			PrivateKey string `json:"privateKey"`
			Multibase  string `json:"multibase"`
			DIDKey     string `json:"didKey"`
		} `json:"keys"`
	}
	runNode(t, "keys", map[string]any{"count": len(shapes)}, &keys)
	checkLibraries(t, keys.Libraries)
	if len(keys.Keys) != len(shapes) {
		t.Fatalf("keys: %d keys for %d repositories", len(keys.Keys), len(shapes))
	}

	// Each repository's DID is registered in `reservoir plc` with the
	// reference's signing key, so the reference can resolve the key.
	directory := &plc.Client{BaseURL: e.plc}
	var build []map[string]string
	for i, name := range shapes {
		pub, err := atcrypto.ParsePublicDIDKey(keys.Keys[i].DIDKey)
		if err != nil {
			t.Fatalf("the reference's key %s: %v", keys.Keys[i].DIDKey, err)
		}
		rot, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			t.Fatal(err)
		}
		rotPub, _ := rot.PublicKey()
		did, _, err := directory.CreateAccount(ctx, plc.Account{
			Handle: syntax.Handle("ref-" + name + ".test"), Endpoint: e.base, SigningKey: pub, RotationKeys: []atcrypto.PublicKey{rotPub},
		}, rot)
		if err != nil {
			t.Fatalf("registering the DID of %s: %v", name, err)
		}
		build = append(build, map[string]string{"name": name, "did": did.String(), "privateKey": keys.Keys[i].PrivateKey})
	}
	var built struct {
		Repos []refRepo `json:"repos"`
	}
	runNode(t, "build", map[string]any{"outDir": t.TempDir(), "repos": build}, &built)
	if len(built.Repos) != len(shapes) {
		t.Fatalf("build: %d repositories for %d asked", len(built.Repos), len(shapes))
	}
	for i, ref := range built.Repos {
		t.Run(ref.Name, func(t *testing.T) {
			servedBack(t, e, ref, keys.Keys[i].Multibase)
		})
	}
}

func servedBack(t *testing.T, e *env, ref refRepo, signingKey string) {
	refCAR, err := os.ReadFile(ref.File)
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseCAR(refCAR)
	if err != nil {
		t.Fatalf("the reference's CAR: %v", err)
	}

	// Adopt the identity, import the repository, upload its blobs.
	var created struct {
		DID string `json:"did"`
	}
	e.procedure(t, "com.atproto.server.createAccount", "admin",
		map[string]string{"handle": "ref-" + ref.Name + ".test", "did": ref.DID, "signingKey": signingKey}, &created)
	if created.DID != ref.DID {
		t.Fatalf("createAccount adopting %s answered did %q", ref.DID, created.DID)
	}
	q := url.Values{"repo": {ref.DID}}
	if code, b := e.call(t, http.MethodPost, "com.atproto.repo.importRepo", q, "admin", "application/vnd.ipld.car", refCAR); code != http.StatusOK {
		t.Fatalf("importRepo of the reference's %s repository (%d bytes, %d blocks): %d %s", ref.Name, len(refCAR), len(want.blocks), code, b)
	}
	for _, blob := range ref.Blobs {
		data, err := os.ReadFile(blob.File)
		if err != nil {
			t.Fatal(err)
		}
		code, b := e.call(t, http.MethodPost, "com.atproto.repo.uploadBlob", q, "admin", blob.MimeType, data)
		if code != http.StatusOK {
			t.Fatalf("uploadBlob %s: %d %s", blob.CID, code, b)
		}
		if !strings.Contains(string(b), `"$link":"`+blob.CID+`"`) {
			t.Errorf("uploadBlob: we answered %s, the reference computes the CID %s for the same %d bytes", b, blob.CID, len(data))
		}
	}

	// getRepo: exactly the reference's blocks and root.
	got, err := parseCAR(e.get(t, "com.atproto.sync.getRepo", url.Values{"did": {ref.DID}}))
	if err != nil {
		t.Fatalf("our getRepo CAR: %v", err)
	}
	if len(got.roots) != 1 || got.roots[0].String() != ref.Root {
		t.Errorf("getRepo roots %v, the reference's commit is %s", got.roots, ref.Root)
	}
	compareBlocks(t, "getRepo", want, got)
	if got.dups > 0 {
		t.Errorf("getRepo repeats %d blocks", got.dups)
	}
	t.Logf("%s: %d blocks, %d records, same root and blocks as the reference; block order %s", ref.Name, len(got.blocks), len(ref.Records), orderNote(want, got))

	var head struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	}
	e.getJSON(t, "com.atproto.sync.getLatestCommit", url.Values{"did": {ref.DID}}, &head)
	if head.CID != ref.Root || head.Rev != ref.Rev {
		t.Errorf("getLatestCommit %s %s, the reference's commit %s rev %s", head.CID, head.Rev, ref.Root, ref.Rev)
	}

	// describeRepo lists the reference's collections.
	var desc struct {
		Collections []string `json:"collections"`
	}
	e.getJSON(t, "com.atproto.repo.describeRepo", url.Values{"repo": {ref.DID}}, &desc)
	colls := map[string]bool{}
	for _, r := range ref.Records {
		colls[r.Collection] = true
	}
	wantColls := make([]string, 0, len(colls))
	for c := range colls {
		wantColls = append(wantColls, c)
	}
	sort.Strings(wantColls)
	sort.Strings(desc.Collections)
	if !reflect.DeepEqual(desc.Collections, wantColls) && !(len(wantColls) == 0 && len(desc.Collections) == 0) {
		t.Errorf("describeRepo collections %v, the reference's repository has %v", desc.Collections, wantColls)
	}

	// com.atproto.repo.getRecord: our JSON of the reference's records is
	// the reference's JSON, and the CID is the reference's.
	refCIDs := map[string]string{}
	for _, r := range ref.Records {
		refCIDs[r.Collection+"/"+r.RKey] = r.CID
	}
	for path, refJSON := range ref.JSON {
		coll, rkey, _ := strings.Cut(path, "/")
		var out struct {
			CID   string  `json:"cid"`
			Value jsonRaw `json:"value"`
		}
		e.getJSON(t, "com.atproto.repo.getRecord", url.Values{"repo": {ref.DID}, "collection": {coll}, "rkey": {rkey}}, &out)
		if out.CID != refCIDs[path] {
			t.Errorf("getRecord %s: cid %s, the reference's %s", path, out.CID, refCIDs[path])
		}
		ours, err1 := decodeJSON(out.Value)
		theirs, err2 := decodeJSON(refJSON)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(ours, theirs) {
			t.Errorf("getRecord %s: our JSON\n%s\nthe reference's (lexToJson)\n%s", path, tail(string(out.Value), 3000), tail(string(refJSON), 3000))
		}
	}

	// Blobs: listed, and served byte for byte.
	if len(ref.Blobs) > 0 {
		var lb struct {
			CIDs []string `json:"cids"`
		}
		e.getJSON(t, "com.atproto.sync.listBlobs", url.Values{"did": {ref.DID}}, &lb)
		var wantBlobs []string
		for _, b := range ref.Blobs {
			wantBlobs = append(wantBlobs, b.CID)
			data, _ := os.ReadFile(b.File)
			if served := e.get(t, "com.atproto.sync.getBlob", url.Values{"did": {ref.DID}, "cid": {b.CID}}); !bytes.Equal(served, data) {
				t.Errorf("getBlob %s: %d bytes served, %d uploaded", b.CID, len(served), len(data))
			}
		}
		sort.Strings(wantBlobs)
		sort.Strings(lb.CIDs)
		if !reflect.DeepEqual(lb.CIDs, wantBlobs) {
			t.Errorf("listBlobs %v, the reference's records reference %v", lb.CIDs, wantBlobs)
		}
	}

	// sync.getRecord proofs, of existence (a sample of a big repository:
	// every 97th record, the first and the last) and of absence, verified
	// by the reference.
	var proofs []proofClaim
	for i, r := range ref.Records {
		if len(ref.Records) <= 50 || i%97 == 0 || i == len(ref.Records)-1 {
			c := r.CID
			proofs = append(proofs, e.getRecordProof(t, ref.DID, r.Collection, r.RKey, &c))
		}
	}
	for _, a := range ref.Absent {
		proofs = append(proofs, e.getRecordProof(t, ref.DID, a.Collection, a.RKey, nil))
	}
	verifyProofs(t, e, ref.DID, proofs)
}

// compareBlocks reports every block one CAR has and the other lacks or
// holds with other bytes.
func compareBlocks(t *testing.T, what string, want, got *carFile) {
	t.Helper()
	var missing, extra, differ []string
	for c, b := range want.blocks {
		g, ok := got.blocks[c]
		switch {
		case !ok:
			missing = append(missing, c.String())
		case !bytes.Equal(g, b):
			differ = append(differ, c.String())
		}
	}
	for c := range got.blocks {
		if _, ok := want.blocks[c]; !ok {
			extra = append(extra, c.String())
		}
	}
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("%s: %d blocks, the reference's CAR %d: missing %d %v, extra %d %v, different bytes %d %v",
			what, len(got.blocks), len(want.blocks), len(missing), head(missing), len(extra), head(extra), len(differ), head(differ))
	}
}

func head(list []string) []string {
	sort.Strings(list)
	if len(list) > 10 {
		return append(list[:10:10], fmt.Sprintf("... %d more", len(list)-10))
	}
	return list
}

// orderNote says whether two CARs list their blocks in the same order
// (not required: readers must accept any order).
func orderNote(want, got *carFile) string {
	if len(want.order) != len(got.order) {
		return "not comparable"
	}
	same := 0
	for i := range want.order {
		if want.order[i] == got.order[i] {
			same++
		}
	}
	if same == len(want.order) {
		return "identical to the reference's"
	}
	return fmt.Sprintf("differs from the reference's at %d of %d positions (any order is valid); the commit is block %d of ours, %d of the reference's",
		len(want.order)-same, len(want.order), position(got.order, got.roots[0])+1, position(want.order, want.roots[0])+1)
}

func position(order []cid.Cid, c cid.Cid) int {
	for i, x := range order {
		if x == c {
			return i
		}
	}
	return -1
}
