package mst

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

func TestKeyHeightsFixture(t *testing.T) {
	var rows []struct {
		Key    string `json:"key"`
		Height int    `json:"height"`
	}
	testutil.FixtureJSON(t, "interop/mst/key_heights.json", &rows)
	if len(rows) != 9 {
		t.Fatalf("fixture has %d rows, want 9", len(rows))
	}
	for _, r := range rows {
		if got := HeightForKey([]byte(r.Key)); got != r.Height {
			t.Errorf("HeightForKey(%q) = %d, want %d", r.Key, got, r.Height)
		}
	}
	// indigo's util_interop_test.go adds this one.
	if got := HeightForKey([]byte("R2/359107")); got != 2 {
		t.Errorf("HeightForKey(R2/359107) = %d, want 2", got)
	}
}

func TestCommonPrefixFixture(t *testing.T) {
	var rows []struct {
		Left  string `json:"left"`
		Right string `json:"right"`
		Len   int    `json:"len"`
	}
	testutil.FixtureJSON(t, "interop/mst/common_prefix.json", &rows)
	if len(rows) != 13 {
		t.Fatalf("fixture has %d rows, want 13", len(rows))
	}
	for _, r := range rows {
		if got := CountPrefixLen([]byte(r.Left), []byte(r.Right)); got != r.Len {
			t.Errorf("CountPrefixLen(%q, %q) = %d, want %d", r.Left, r.Right, got, r.Len)
		}
	}
}

func TestExampleKeysFixture(t *testing.T) {
	lines := testutil.FixtureLines(t, "interop/mst/example_keys.txt")
	for _, line := range lines {
		want := int(line[1] - '0')
		if got := HeightForKey([]byte(line)); got != want {
			t.Errorf("HeightForKey(%q) = %d, want %d", line, got, want)
		}
		if err := CheckPath([]byte(line)); err != nil {
			t.Errorf("CheckPath(%q): %v", line, err)
		}
	}
	if len(lines) != 156 {
		t.Fatalf("read %d keys, want 156", len(lines))
	}
}

// The root CIDs of indigo's mst_interop_test.go (sync-spec §4.4).
func TestKnownRoots(t *testing.T) {
	const leaf = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"
	cases := []struct {
		name   string
		keys   []string // suffixes after com.example.record/
		delete []string
		root   string
	}{
		{"empty", nil, nil, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
		{"single key", []string{"3jqfcqzm3fo2j"}, nil, "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"},
		{"height-2 key", []string{"3jqfcqzm3fx2j"}, nil, "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"},
		{"five keys", []string{"3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm4fc2j"}, nil,
			"bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m"},
		{"trim before", []string{"3jqfcqzm3fn2j", "3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fu2j"}, nil,
			"bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4"},
		{"trim after delete", []string{"3jqfcqzm3fn2j", "3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fu2j"},
			[]string{"3jqfcqzm3fs2j"}, "bafyreie4kjuxbwkhzg2i5dljaswcroeih4dgiqq6pazcmunwt2byd725vi"},
		{"two layers", []string{"3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fz2j",
			"3jqfcqzm4fc2j", "3jqfcqzm4fd2j", "3jqfcqzm4ff2j", "3jqfcqzm4fg2j", "3jqfcqzm4fh2j"}, nil,
			"bafyreiettyludka6fpgp33stwxfuwhkzlur6chs4d2v4nkmq2j3ogpdjem"},
		{"two layers plus 3fx2j", []string{"3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fz2j",
			"3jqfcqzm4fc2j", "3jqfcqzm4fd2j", "3jqfcqzm4ff2j", "3jqfcqzm4fg2j", "3jqfcqzm4fh2j", "3jqfcqzm3fx2j"}, nil,
			"bafyreid2x5eqs4w4qxvc5jiwda4cien3gw2q6cshofxwnvv7iucrmfohpm"},
		{"higher layers", []string{"3jqfcqzm3ft2j", "3jqfcqzm3fz2j"}, nil, "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky"},
		{"higher layers plus 3fx2j", []string{"3jqfcqzm3ft2j", "3jqfcqzm3fz2j", "3jqfcqzm3fx2j"}, nil,
			"bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy"},
		{"higher layers plus 3fx2j and 4fd2j", []string{"3jqfcqzm3ft2j", "3jqfcqzm3fz2j", "3jqfcqzm3fx2j", "3jqfcqzm4fd2j"}, nil,
			"bafyreig4jv3vuajbsybhyvb7gggvpwh2zszwfyttjrj6qwvcsp24h6popu"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			val := testutil.MustCID(t, leaf)
			tree := NewEmpty(nil)
			for _, k := range tc.keys {
				if _, err := tree.Insert([]byte("com.example.record/"+k), val); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range tc.delete {
				prev, err := tree.Delete([]byte("com.example.record/" + k))
				if err != nil {
					t.Fatal(err)
				}
				if prev != val {
					t.Fatalf("Delete returned %s, want %s", prev, val)
				}
			}
			root, err := tree.Root()
			if err != nil {
				t.Fatal(err)
			}
			if root.String() != tc.root {
				t.Errorf("root = %s, want %s", root, tc.root)
			}
			if err := tree.Verify(); err != nil {
				t.Error(err)
			}
			if len(tc.delete) > 0 {
				return
			}
			// The same key set streamed through the Builder.
			b := NewBuilder(func(cid.Cid, []byte) error { return nil })
			for _, k := range sortedCopy(tc.keys) {
				if err := b.Add([]byte("com.example.record/"+k), val); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := b.Finish(); err != nil || got.String() != tc.root {
				t.Errorf("Builder root = %s, %v; want %s", got, err, tc.root)
			}
		})
	}
}
