package interop

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoCheck is the reference's verdict on a CAR exported by reservoir.
type repoCheck struct {
	Libraries map[string]string `json:"libraries"`
	Problems  []string          `json:"problems"`
	Key       string            `json:"key"`
	PDS       []struct {
		ID              string `json:"id"`
		Type            string `json:"type"`
		ServiceEndpoint string `json:"serviceEndpoint"`
	} `json:"pds"`
	Root    string `json:"root"`
	Data    string `json:"data"`
	Rebuilt string `json:"rebuilt"`
	Rev     string `json:"rev"`
	Records int    `json:"records"`
	Blocks  int    `json:"blocks"`
}

// TestOurReposCheckedByReference is check 2: repositories written through
// reservoir's API, exported with getRepo, verified and rebuilt by the
// reference.
func TestOurReposCheckedByReference(t *testing.T) {
	needNode(t)
	e := newEnv(t)
	mixed := e.createAccount(t, "mixed.test")
	mixedWorkload(t, e, mixed, 30)
	bulk := e.createAccount(t, "bulk.test")
	bulkWorkload(t, e, bulk, 1000)
	empty := e.createAccount(t, "empty.test")

	for _, a := range []*account{mixed, bulk, empty} {
		t.Run(a.Handle, func(t *testing.T) {
			car := e.get(t, "com.atproto.sync.getRepo", url.Values{"did": {a.DID}})
			file := filepath.Join(t.TempDir(), "repo.car")
			if err := os.WriteFile(file, car, 0o644); err != nil {
				t.Fatal(err)
			}
			var res repoCheck
			runNode(t, "check-repo", map[string]any{"plcUrl": e.plc, "did": a.DID, "car": file, "records": a.current()}, &res)
			checkLibraries(t, res.Libraries)
			for _, p := range res.Problems {
				t.Errorf("the reference on our %s repository: %s", a.Handle, p)
			}
			var head commitMeta
			e.getJSON(t, "com.atproto.sync.getLatestCommit", url.Values{"did": {a.DID}}, &head)
			if res.Root != head.CID || res.Rev != head.Rev {
				t.Errorf("the CAR's commit is %s rev %s, getLatestCommit says %s rev %s", res.Root, res.Rev, head.CID, head.Rev)
			}
			if want := a.commits[len(a.commits)-1]; res.Root != want.CID {
				t.Errorf("the CAR's commit is %s, the last write answered commit %s", res.Root, want.CID)
			}
			if res.Records != len(a.records) {
				t.Errorf("the reference walked %d records, %d were written and not deleted", res.Records, len(a.records))
			}
			if len(res.PDS) != 1 || res.PDS[0].ServiceEndpoint != e.base || !strings.HasSuffix(res.PDS[0].ID, "#atproto_pds") {
				t.Errorf("the DID document (through the reference's resolver) has services %+v, want #atproto_pds at %s", res.PDS, e.base)
			}
			t.Logf("%s: %d records, %d blocks, signed by %s, MST root %s (the reference rebuilds %s)", a.Handle, res.Records, res.Blocks, res.Key, res.Data, res.Rebuilt)

			// sync.getRecord proofs of current records and of deleted ones.
			var proofs []proofClaim
			i := 0
			for p, c := range a.cids {
				if i++; i > 40 {
					break
				}
				coll, rkey, _ := strings.Cut(p, "/")
				c := c
				proofs = append(proofs, e.getRecordProof(t, a.DID, coll, rkey, &c))
			}
			for _, p := range a.deleted {
				coll, rkey, _ := strings.Cut(p, "/")
				proofs = append(proofs, e.getRecordProof(t, a.DID, coll, rkey, nil))
			}
			proofs = append(proofs, e.getRecordProof(t, a.DID, "app.bsky.feed.post", "3zzzzzzzzzz22", nil))
			verifyProofs(t, e, a.DID, proofs)
		})
	}
}
