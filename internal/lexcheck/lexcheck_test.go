package lexcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Values of the right formats, made here rather than by any code under test.
var (
	did       = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	rev       = "3jzfcijpj2z2a"
	cborCID   = dagcbor.SumCBOR([]byte{0xa0}).String() // the empty map
	rawCID    = dagcbor.SumRaw([]byte("hello")).String()
	blobJSON  = fmt.Sprintf(`{"$type":"blob","ref":{"$link":%q},"mimeType":"image/png","size":5}`, rawCID)
	recordURI = "at://" + did + "/app.bsky.feed.post/" + rev
)

// bodyCase is a body and the problems it must produce: substrings of the
// "path: message" of each problem, in order (none: valid).
type bodyCase struct {
	name string
	nsid string
	body string
	want []string
}

func fixtureCases() []bodyCase {
	return []bodyCase{
		// A $ref'd array of objects, optional fields, formats.
		{"listRepos ok", "com.atproto.sync.listRepos",
			`{"cursor":"7","repos":[{"did":"` + did + `","head":"` + cborCID + `","rev":"` + rev + `","active":false,"status":"takendown"}]}`, nil},
		{"listRepos empty", "com.atproto.sync.listRepos", `{"repos":[]}`, nil},
		{"listRepos status outside knownValues is open", "com.atproto.sync.listRepos",
			`{"repos":[{"did":"` + did + `","head":"` + cborCID + `","rev":"` + rev + `","status":"sleeping"}]}`, nil},
		{"listRepos missing repos", "com.atproto.sync.listRepos", `{"cursor":"1"}`, []string{"$.repos: required but missing"}},
		{"listRepos item problems", "com.atproto.sync.listRepos",
			`{"repos":[{"did":"plc:x","head":"bafyfoo","active":"yes","extra":1}]}`,
			[]string{"$.repos[0].rev: required but missing", "$.repos[0].active: is the string \"yes\", not a boolean",
				"$.repos[0].did: \"plc:x\" is not a valid did", "$.repos[0].extra: key not in the schema", "$.repos[0].head: \"bafyfoo\" is not a valid cid"}},
		{"listRepos bad rev", "com.atproto.sync.listRepos",
			`{"repos":[{"did":"` + did + `","head":"` + cborCID + `","rev":"2024-01-01"}]}`, []string{"$.repos[0].rev: \"2024-01-01\" is not a valid tid"}},
		{"listRepos repos not array", "com.atproto.sync.listRepos", `{"repos":{}}`, []string{"$.repos: is an object, not an array"}},
		{"listRepos null item", "com.atproto.sync.listRepos", `{"repos":[null]}`, []string{"$.repos[0]: is null"}},
		{"listRepos null cursor", "com.atproto.sync.listRepos", `{"repos":[],"cursor":null}`, []string{"$.cursor: is null"}},
		{"$type on an inline object", "com.atproto.sync.getHead", `{"$type":"com.atproto.sync.getHead","root":"` + cborCID + `"}`,
			[]string{"$.$type: $type on an object that is no named definition"}},
		{"top level not an object", "com.atproto.sync.getHead", `[]`, []string{"$: is an array, not an object"}},
		{"getHead v0 CID", "com.atproto.sync.getHead", `{"root":"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"}`, []string{"$.root:"}},

		// Cross-file ref to a string definition.
		{"listHosts ok", "com.atproto.sync.listHosts", `{"hosts":[{"hostname":"pds.example.com","seq":3,"accountCount":2,"status":"active"}]}`, nil},
		{"listHosts status not string", "com.atproto.sync.listHosts", `{"hosts":[{"hostname":"h","status":1}]}`,
			[]string{"$.hosts[0].status: is an integer, not a string"}},
		{"listHosts seq string", "com.atproto.sync.listHosts", `{"hosts":[{"hostname":"h","seq":"3"}]}`,
			[]string{"$.hosts[0].seq: is the string \"3\", not an integer"}},

		// Closed unions by $type, with local refs.
		{"applyWrites ok", "com.atproto.repo.applyWrites",
			`{"commit":{"cid":"` + cborCID + `","rev":"` + rev + `"},"results":[` +
				`{"$type":"com.atproto.repo.applyWrites#createResult","uri":"` + recordURI + `","cid":"` + cborCID + `","validationStatus":"unknown"},` +
				`{"$type":"com.atproto.repo.applyWrites#deleteResult"}]}`, nil},
		{"applyWrites member without $type", "com.atproto.repo.applyWrites", `{"results":[{"uri":"` + recordURI + `","cid":"` + cborCID + `"}]}`,
			[]string{"$.results[0]: union member without a $type"}},
		{"applyWrites $type outside closed union", "com.atproto.repo.applyWrites", `{"results":[{"$type":"com.atproto.repo.applyWrites#create"}]}`,
			[]string{"$.results[0]: $type \"com.atproto.repo.applyWrites#create\" is not one of the closed union"}},
		{"applyWrites member problems", "com.atproto.repo.applyWrites",
			`{"results":[{"$type":"com.atproto.repo.applyWrites#updateResult","uri":"https://example.com","cid":"` + cborCID + `"},{"$type":"com.atproto.repo.applyWrites#deleteResult","uri":"x"}]}`,
			[]string{"$.results[0].uri: \"https://example.com\" is not a valid at-uri", "$.results[1].uri: key not in the schema"}},
		{"applyWrites commit missing rev", "com.atproto.repo.applyWrites", `{"commit":{"cid":"` + cborCID + `"}}`,
			[]string{"$.commit.rev: required but missing"}},
		{"applyWrites commit with its $type", "com.atproto.repo.applyWrites", `{"commit":{"$type":"com.atproto.repo.defs#commitMeta","cid":"` + cborCID + `","rev":"` + rev + `"}}`, nil},
		{"applyWrites commit with another $type", "com.atproto.repo.applyWrites", `{"commit":{"$type":"com.atproto.repo.defs#other","cid":"` + cborCID + `","rev":"` + rev + `"}}`,
			[]string{"$.commit.$type: is the string \"com.atproto.repo.defs#other\", want \"com.atproto.repo.defs#commitMeta\""}},

		// Open union with cross-file refs (and the main definition of strongRef).
		{"getSubjectStatus repoRef", "com.atproto.admin.getSubjectStatus",
			`{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":"` + did + `"},"takedown":{"applied":true,"ref":"r1"},"deactivated":{"applied":false}}`, nil},
		{"getSubjectStatus strongRef", "com.atproto.admin.getSubjectStatus",
			`{"subject":{"$type":"com.atproto.repo.strongRef","uri":"` + recordURI + `","cid":"` + cborCID + `"}}`, nil},
		{"getSubjectStatus open union admits other types", "com.atproto.admin.getSubjectStatus", `{"subject":{"$type":"com.example.thing","x":1}}`, nil},
		{"getSubjectStatus repoRef bad did", "com.atproto.admin.getSubjectStatus", `{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":"nope"}}`,
			[]string{"$.subject.did: \"nope\" is not a valid did"}},
		{"getSubjectStatus statusAttr missing applied", "com.atproto.admin.getSubjectStatus",
			`{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":"` + did + `"},"takedown":{}}`, []string{"$.takedown.applied: required but missing"}},
		{"updateSubjectStatus has no deactivated output", "com.atproto.admin.updateSubjectStatus",
			`{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":"` + did + `"},"deactivated":{"applied":true}}`, []string{"$.deactivated: key not in the schema"}},

		// blob, unknown, at-identifier-like formats, handle.
		{"uploadBlob ok", "com.atproto.repo.uploadBlob", `{"blob":` + blobJSON + `}`, nil},
		{"uploadBlob dag-cbor ref", "com.atproto.repo.uploadBlob",
			`{"blob":{"$type":"blob","ref":{"$link":"` + cborCID + `"},"mimeType":"image/png","size":5}}`, []string{"$.blob.ref: " + cborCID + " is not a raw sha2-256 CIDv1"}},
		{"uploadBlob legacy form refused", "com.atproto.repo.uploadBlob", `{"blob":{"cid":"` + rawCID + `","mimeType":"image/png"}}`,
			[]string{"$.blob.$type: is null, want \"blob\"", "$.blob.cid: key not in a blob", "$.blob.ref: is null, not a cid-link", "$.blob.size: is null, not an integer"}},
		{"uploadBlob ref as string", "com.atproto.repo.uploadBlob", `{"blob":{"$type":"blob","ref":"` + rawCID + `","mimeType":"","size":-1}}`,
			[]string{"$.blob.ref: is the string", "$.blob.mimeType: is the string \"\", not a non-empty string", "$.blob.size: is negative"}},
		{"getRecord ok", "com.atproto.repo.getRecord", `{"uri":"` + recordURI + `","cid":"` + cborCID + `","value":{"$type":"app.bsky.feed.post","text":"hi","n":[1,{"$link":"` + cborCID + `"}]}}`, nil},
		{"getRecord value not an object", "com.atproto.repo.getRecord", `{"uri":"` + recordURI + `","value":"text"}`, []string{"$.value: is the string \"text\", not an object"}},
		{"float anywhere", "com.atproto.repo.getRecord", `{"uri":"` + recordURI + `","value":{"x":1.5}}`, []string{"$: not JSON of the atproto data model"}},
		{"duplicate key", "com.atproto.sync.getHead", `{"root":"` + cborCID + `","root":"` + cborCID + `"}`, []string{"$: not JSON of the atproto data model"}},
		{"not JSON", "com.atproto.sync.getHead", `{"root":`, []string{"$: not JSON of the atproto data model"}},
		{"describeRepo ok", "com.atproto.repo.describeRepo",
			`{"handle":"alice.test","did":"` + did + `","didDoc":{"id":"` + did + `"},"collections":["app.bsky.feed.post"],"handleIsCorrect":true}`, nil},
		{"describeRepo problems", "com.atproto.repo.describeRepo",
			`{"handle":"alice","did":"` + did + `","didDoc":[],"collections":["not an nsid"],"handleIsCorrect":1}`,
			[]string{"$.collections[0]: \"not an nsid\" is not a valid nsid", "$.didDoc: is an array, not an object", "$.handle: \"alice\" is not a valid handle", "$.handleIsCorrect: is an integer, not a boolean"}},
		{"createAccount ok", "com.atproto.server.createAccount",
			`{"accessJwt":"a","refreshJwt":"r","handle":"alice.test","did":"` + did + `","didDoc":{}}`, nil},
		{"createAccount missing tokens", "com.atproto.server.createAccount", `{"handle":"alice.test","did":"` + did + `"}`,
			[]string{"$.accessJwt: required but missing", "$.refreshJwt: required but missing"}},
		{"getRepoStatus ok", "com.atproto.sync.getRepoStatus", `{"did":"` + did + `","active":true,"rev":"` + rev + `"}`, nil},
		{"getRepoStatus missing active", "com.atproto.sync.getRepoStatus", `{"did":"` + did + `"}`, []string{"$.active: required but missing"}},
		{"listBlobs cids", "com.atproto.sync.listBlobs", `{"cids":["` + rawCID + `","x"]}`, []string{"$.cids[1]: \"x\" is not a valid cid"}},
		{"deleteRecord empty", "com.atproto.repo.deleteRecord", `{}`, nil},
	}
}

func TestFixtureLexicons(t *testing.T) {
	cat := Fixtures(t)
	for _, tc := range fixtureCases() {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, cat.ValidateOutput(tc.nsid, []byte(tc.body)), tc.want)
		})
	}
}

// checkCase compares the problems of err with want, substrings in order.
func checkCase(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("valid body refused: %v", err)
		}
		return
	}
	var invalid *Error
	if !errors.As(err, &invalid) {
		t.Fatalf("got %v, want problems %q", err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not match ErrInvalid")
	}
	got := make([]string, len(invalid.Problems))
	for i, p := range invalid.Problems {
		got[i] = p.String()
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d is %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

// synthetic is a lexicon written for these tests (not a fixture): every
// value type and constraint the fixtures do not use.
const synthetic = `{
  "lexicon": 1,
  "id": "test.lexcheck.kinds",
  "defs": {
    "main": {
      "type": "query",
      "output": {
        "encoding": "application/json",
        "schema": {
          "type": "object",
          "required": ["n"],
          "nullable": ["maybe"],
          "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "odd": {"type": "integer", "enum": [1, 3, 5]},
            "seven": {"type": "integer", "const": 7},
            "yes": {"type": "boolean", "const": true},
            "maybe": {"type": "string"},
            "short": {"type": "string", "minLength": 2, "maxLength": 4},
            "chars": {"type": "string", "maxGraphemes": 2, "minGraphemes": 1},
            "color": {"type": "string", "enum": ["red", "green"]},
            "fixed": {"type": "string", "const": "x"},
            "when": {"type": "string", "format": "datetime"},
            "who": {"type": "string", "format": "at-identifier"},
            "key": {"type": "string", "format": "record-key"},
            "lang": {"type": "string", "format": "language"},
            "site": {"type": "string", "format": "uri"},
            "link": {"type": "cid-link"},
            "raw": {"type": "bytes", "minLength": 1, "maxLength": 3},
            "pic": {"type": "blob", "accept": ["image/*"], "maxSize": 10},
            "any": {"type": "blob"},
            "nothing": {"type": "null"},
            "tok": {"type": "ref", "ref": "#tok"},
            "rec": {"type": "ref", "ref": "#rec"},
            "pair": {"type": "array", "items": {"type": "ref", "ref": "#flag"}, "minLength": 1, "maxLength": 2},
            "either": {"type": "union", "refs": ["#rec", "#sub"], "closed": true}
          }
        }
      }
    },
    "tok": {"type": "token"},
    "flag": {"type": "string", "enum": ["on", "off"]},
    "rec": {"type": "record", "key": "tid", "record": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}},
    "sub": {"type": "object", "properties": {"depth": {"type": "integer"}}},
    "proc": {"type": "procedure"},
    "car": {"type": "query", "output": {"encoding": "application/vnd.ipld.car"}}
  }
}`

func syntheticCatalog(t *testing.T) *Catalog {
	dir := t.TempDir()
	path := filepath.Join(dir, "test", "lexcheck")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "kinds.json"), []byte(synthetic), 0o644); err != nil {
		t.Fatal(err)
	}
	weird := `{"lexicon":1,"id":"test.lexcheck.weird","defs":{"main":{"type":"query","output":{"encoding":"application/json","schema":{"type":"object","properties":{` +
		`"x":{"type":"float"},"y":{"type":"string","format":"color"},"z":{"type":"ref","ref":"#missing"},"w":{"type":"array"}}}}}}}`
	if err := os.WriteFile(filepath.Join(path, "weird.json"), []byte(weird), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "misnamed.json"), []byte(`{"lexicon":1,"id":"test.lexcheck.other","defs":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return NewCatalog(dir)
}

func TestSyntheticLexicon(t *testing.T) {
	cat := syntheticCatalog(t)
	const n = "test.lexcheck.kinds"
	pic := func(mime string, size int) string {
		return fmt.Sprintf(`{"$type":"blob","ref":{"$link":%q},"mimeType":%q,"size":%d}`, rawCID, mime, size)
	}
	cases := []struct {
		name, body string
		want       []string
	}{
		{"minimal", `{"n":1}`, nil},
		{"everything valid", `{"n":10,"odd":3,"seven":7,"yes":true,"maybe":null,"short":"ab","chars":"e\u0301\ud83d\udc4d\ud83c\udffd","color":"red","fixed":"x",` +
			`"when":"2024-11-25T10:00:00.000Z","who":"alice.test","key":"self","lang":"en-GB","site":"https://example.com/x","link":{"$link":"` + cborCID + `"},` +
			`"raw":{"$bytes":"AAEC"},"pic":` + pic("image/png", 10) + `,"any":` + pic("application/x-thing", 1<<40) + `,"nothing":null,"tok":"test.lexcheck.kinds#tok",` +
			`"rec":{"$type":"test.lexcheck.kinds#rec","text":"hi"},"pair":["on","off"],"either":{"$type":"test.lexcheck.kinds#sub","depth":2}}`, nil},
		{"flag of two regional indicators is one grapheme", `{"n":1,"chars":"\ud83c\uddeb\ud83c\uddf7a"}`, nil},
		{"zwj family is one grapheme", `{"n":1,"chars":"\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67!"}`, nil},
		{"integer bounds", `{"n":0,"odd":2,"seven":8}`, []string{"$.n: is 0, below the minimum 1", "$.odd: is 2, not one of the enum", "$.seven: is 8, not the constant 7"}},
		{"integer above max", `{"n":11}`, []string{"$.n: is 11, above the maximum 10"}},
		{"required missing", `{}`, []string{"$.n: required but missing"}},
		{"required but null", `{"n":null}`, []string{"$.n: is null, which the schema does not allow"}},
		{"boolean const", `{"n":1,"yes":false}`, []string{"$.yes: is false, not the constant true"}},
		{"string lengths in bytes", `{"n":1,"short":"\u00e9\u00e9\u00e9"}`, []string{"$.short: has 6 bytes of UTF-8, more than maxLength 4"}},
		{"string too short", `{"n":1,"short":"a"}`, []string{"$.short: has 1 bytes of UTF-8, fewer than minLength 2"}},
		{"graphemes", `{"n":1,"chars":"abc"}`, []string{"$.chars: has 3 graphemes, more than maxGraphemes 2"}},
		{"no graphemes", `{"n":1,"chars":""}`, []string{"$.chars: has 0 graphemes, fewer than minGraphemes 1"}},
		{"string enum and const", `{"n":1,"color":"blue","fixed":"y"}`, []string{"$.color: is \"blue\", not one of the enum", "$.fixed: is \"y\", not the constant \"x\""}},
		{"formats", `{"n":1,"when":"2024-11-25","who":"@alice","key":"..","lang":"english!","site":"example.com"}`,
			[]string{"$.key: \"..\" is not a valid record-key", "$.lang: \"english!\" is not a valid language", "$.site: \"example.com\" is not a valid uri",
				"$.when: \"2024-11-25\" is not a valid datetime", "$.who: \"@alice\" is not a valid at-identifier"}},
		{"cid-link as string", `{"n":1,"link":"` + cborCID + `"}`, []string{"$.link: is the string"}},
		{"bytes as string and too long", `{"n":1,"raw":"AAEC"}`, []string{"$.raw: is the string \"AAEC\", not bytes"}},
		{"bytes too long", `{"n":1,"raw":{"$bytes":"AAECAw"}}`, []string{"$.raw: has 4 bytes, more than maxLength 3"}},
		{"bytes empty", `{"n":1,"raw":{"$bytes":""}}`, []string{"$.raw: has 0 bytes, fewer than minLength 1"}},
		{"blob accept and maxSize", `{"n":1,"pic":` + pic("video/mp4", 11) + `}`,
			[]string{"$.pic.mimeType: \"video/mp4\" is not accepted", "$.pic.size: is 11, above maxSize 10"}},
		{"null type", `{"n":1,"nothing":0}`, []string{"$.nothing: is an integer, not null"}},
		{"nullable non-null still checked", `{"n":1,"maybe":3}`, []string{"$.maybe: is an integer, not a string"}},
		{"token", `{"n":1,"tok":"test.lexcheck.kinds#other"}`, []string{"$.tok: is the string \"test.lexcheck.kinds#other\", not the token"}},
		{"record without required", `{"n":1,"rec":{"$type":"test.lexcheck.kinds#rec"}}`, []string{"$.rec.text: required but missing"}},
		{"array bounds and items", `{"n":1,"pair":["on","off","maybe"]}`, []string{"$.pair: has 3 elements, more than maxLength 2", "$.pair[2]: is \"maybe\", not one of the enum"}},
		{"array empty", `{"n":1,"pair":[]}`, []string{"$.pair: has 0 elements, fewer than minLength 1"}},
		{"closed union", `{"n":1,"either":{"$type":"test.lexcheck.kinds#flag"}}`, []string{"$.either: $type \"test.lexcheck.kinds#flag\" is not one of the closed union"}},
		{"union member checked", `{"n":1,"either":{"$type":"test.lexcheck.kinds#sub","depth":"deep"}}`, []string{"$.either.depth: is the string \"deep\", not an integer"}},
		{"union not an object", `{"n":1,"either":"x"}`, []string{"$.either: is the string \"x\", not an object of a union"}},
		{"odd keys quoted in paths", `{"n":1,"a b":1}`, []string{"$[\"a b\"]: key not in the schema"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, cat.ValidateOutput(n, []byte(tc.body)), tc.want)
		})
	}
}

func TestSchemaErrors(t *testing.T) {
	cat := syntheticCatalog(t)
	for _, tc := range []struct{ name, nsid, body string }{
		{"no such file", "test.lexcheck.absent", `{}`},
		{"not an NSID", "nope", `{}`},
		{"id does not match the path", "test.lexcheck.misnamed", `{}`},
		{"procedure without output", "test.lexcheck.kinds#proc", `{}`},
		{"CAR output", "test.lexcheck.kinds#car", `{}`},
		{"a definition that is not a method", "test.lexcheck.kinds#sub", `{}`},
		{"ref to no definition", "test.lexcheck.kinds#", `{}`},
		{"unknown type", "test.lexcheck.weird", `{"x":1}`},
		{"unknown format", "test.lexcheck.weird", `{"y":"red"}`},
		{"ref to nothing", "test.lexcheck.weird", `{"z":1}`},
		{"array without items", "test.lexcheck.weird", `{"w":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := cat.ValidateOutput(tc.nsid, []byte(tc.body)); !errors.Is(err, ErrSchema) {
				t.Fatalf("got %v, want an ErrSchema error", err)
			}
		})
	}
	if err := cat.ValidateDef("test.lexcheck.kinds#proc", []byte(`{}`)); !errors.Is(err, ErrSchema) {
		t.Errorf("ValidateDef of a procedure: got %v, want an ErrSchema error", err)
	}
	// The fixture catalog: getRepo answers a CAR, requestCrawl nothing.
	fx := Fixtures(t)
	for _, nsid := range []string{"com.atproto.sync.getRepo", "com.atproto.sync.requestCrawl", "com.atproto.sync.subscribeRepos", "com.atproto.sync.defs"} {
		if err := fx.ValidateOutput(nsid, []byte(`{}`)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: got %v, want an ErrSchema error", nsid, err)
		}
	}
}

func TestValidateDef(t *testing.T) {
	cat := Fixtures(t)
	if err := cat.ValidateDef("com.atproto.sync.listRepos#repo", []byte(`{"did":"`+did+`","head":"`+cborCID+`","rev":"`+rev+`"}`)); err != nil {
		t.Errorf("valid #repo refused: %v", err)
	}
	checkCase(t, cat.ValidateDef("com.atproto.sync.listRepos#repo", []byte(`{"did":"`+did+`"}`)),
		[]string{"$.head: required but missing", "$.rev: required but missing"})
	checkCase(t, cat.ValidateDef("com.atproto.repo.strongRef", []byte(`{"$type":"com.atproto.repo.strongRef","uri":"`+recordURI+`","cid":"`+cborCID+`","x":1}`)),
		[]string{"$.x: key not in the schema"})
	checkCase(t, cat.ValidateDef("com.atproto.sync.defs#hostStatus", []byte(`"active"`)), nil)
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(string, ...any) {}

func TestCheckReportsEachProblem(t *testing.T) {
	rec := &recorder{TB: t}
	Check(rec, "com.atproto.sync.getRepoStatus", []byte(`{"did":"`+did+`","active":true,"rev":"`+rev+`"}`))
	CheckDef(rec, "com.atproto.repo.defs#commitMeta", []byte(`{"cid":"`+cborCID+`","rev":"`+rev+`"}`))
	if len(rec.errors) != 0 {
		t.Fatalf("valid bodies reported: %q", rec.errors)
	}
	Check(rec, "com.atproto.sync.getRepoStatus", []byte(`{"did":"x","extra":true}`))
	want := []string{
		`com.atproto.sync.getRepoStatus output $.active: required but missing`,
		`com.atproto.sync.getRepoStatus output $.did: "x" is not a valid did`,
		`com.atproto.sync.getRepoStatus output $.extra: key not in the schema`,
	}
	if len(rec.errors) != len(want) {
		t.Fatalf("reported %q, want %d problems", rec.errors, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(rec.errors[i], w) {
			t.Errorf("report %d is %q, want prefix %q", i, rec.errors[i], w)
		}
	}
}

func TestGraphemes(t *testing.T) {
	for s, want := range map[string]int{
		"":                     0,
		"abc":                  3,
		"e\u0301":              1, // e + combining acute
		"\U0001F44D\U0001F3FD": 1, // thumbs up + skin tone
		"\U0001F1EB\U0001F1F7\U0001F1E9\U0001F1EA":   2, // two flags
		"\U0001F468\u200D\U0001F469\u200D\U0001F467": 1, // family
		"\u2764\uFE0F": 1, // heart + variation selector
		"日本語":          3,
	} {
		if got := graphemes(s); got != want {
			t.Errorf("graphemes(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestCatalogConcurrentLoads(t *testing.T) {
	cat := NewCatalog(Fixtures(t).dir)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := cat.ValidateOutput("com.atproto.sync.listRepos", []byte(`{"repos":[]}`)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func FuzzValidateOutput(f *testing.F) {
	for _, tc := range fixtureCases() {
		f.Add(tc.nsid, tc.body)
	}
	f.Fuzz(func(t *testing.T, nsid, body string) {
		cat := Fixtures(t)
		err := cat.ValidateOutput(nsid, []byte(body))
		var invalid *Error
		if err != nil && !errors.Is(err, ErrSchema) && !errors.As(err, &invalid) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if errors.As(err, &invalid) && len(invalid.Problems) == 0 {
			t.Fatal("an *Error without problems")
		}
	})
}

func BenchmarkValidateOutput(b *testing.B) {
	cat := Fixtures(b)
	var sb strings.Builder
	sb.WriteString(`{"cursor":"1000","repos":[`)
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"did":%q,"head":%q,"rev":%q,"active":true}`, did, cborCID, rev)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	if err := cat.ValidateOutput("com.atproto.sync.listRepos", body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := cat.ValidateOutput("com.atproto.sync.listRepos", body); err != nil {
			b.Fatal(err)
		}
	}
}
