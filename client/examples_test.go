package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// A repository built and written as a CAR in memory, then opened and
// verified as a downloaded one would be.
func ExampleOpenRepoCAR() {
	key, _ := atcrypto.GeneratePrivateKeyK256()
	blocks := mst.MemBlocks{}
	var writes []repo.Write
	for i, text := range []string{"hello", "world", "again"} {
		rec, _ := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T00:00:00.000Z"})
		writes = append(writes, repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/3l0000000000%d", i), Record: rec})
	}
	like, _ := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.like", "createdAt": "2026-11-26T00:00:00.000Z"})
	writes = append(writes, repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.like/3l00000000009", Record: like})
	res, err := repo.BuildCommit(mst.NewEmpty(blocks), nil, writes, repo.CommitOptions{DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Key: key})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := car.NewWriter(&buf, []cid.Cid{res.CID})
	for _, b := range res.NewBlocks { // the commit, the MST nodes, the records
		w.WriteBlock(b.CID, b.Data)
	}
	w.Flush()

	rc, err := client.OpenRepoCAR(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil)
	if err != nil {
		log.Fatal(err)
	}
	pub, _ := key.PublicKey()
	rep, err := rc.Verify(context.Background(), client.VerifyRepoOptions{Keys: client.StaticKey(pub)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.DID, "signature verified:", rep.SignatureVerified)
	for _, c := range rep.Collections {
		fmt.Println(c.Collection, c.Records)
	}
	// Output:
	// did:plc:ewvi7nxzyoun6zhxrhs64oiz signature verified: true
	// app.bsky.feed.like 1
	// app.bsky.feed.post 3
}

// fakeHost answers a few XRPC calls the way a PDS would.
func fakeHost() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path + "?" + r.URL.Query().Get("cursor") {
		case "/xrpc/com.atproto.sync.getLatestCommit?":
			if r.URL.Query().Get("did") != "did:plc:ewvi7nxzyoun6zhxrhs64oiz" {
				w.WriteHeader(http.StatusBadRequest) // the reference PDS's status for named errors
				io.WriteString(w, `{"error":"RepoNotFound","message":"Could not find repo"}`)
				return
			}
			io.WriteString(w, `{"cid":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm","rev":"3l2uygzaf5v2b"}`)
		case "/xrpc/com.atproto.sync.listReposByCollection?":
			io.WriteString(w, `{"cursor":"p2","repos":[{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},{"did":"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"}]}`)
		case "/xrpc/com.atproto.sync.listReposByCollection?p2":
			io.WriteString(w, `{"repos":[{"did":"did:plc:cccccccccccccccccccccccc"}]}`)
		default:
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, `{"error":"MethodNotImplemented"}`)
		}
	}))
}

func ExampleClient_GetLatestCommit() {
	host := fakeHost()
	defer host.Close()
	c, err := client.New(host.URL)
	if err != nil {
		log.Fatal(err)
	}
	lc, err := c.GetLatestCommit(context.Background(), "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lc.Rev, lc.CID)

	// Errors are typed by their lexicon name, whatever the status.
	_, err = c.GetLatestCommit(context.Background(), "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	fmt.Println(errors.Is(err, client.ErrRepoNotFound), client.IsNotFound(err))
	// Output:
	// 3l2uygzaf5v2b bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm
	// true true
}

func ExampleClient_AllReposByCollection() {
	host := fakeHost()
	defer host.Close()
	c, _ := client.New(host.URL)
	for did, err := range c.AllReposByCollection(context.Background(), "app.bsky.feed.post", 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(did)
	}
	// Output:
	// did:plc:aaaaaaaaaaaaaaaaaaaaaaaa
	// did:plc:bbbbbbbbbbbbbbbbbbbbbbbb
	// did:plc:cccccccccccccccccccccccc
}

// Following a relay's firehose with verification, printing new posts. It
// needs the network, so it is only compiled.
func ExampleSubscriber() {
	keys, err := identity.New(identity.Options{}) // plc.directory, did:web over HTTPS
	if err != nil {
		log.Fatal(err)
	}
	s := &client.Subscriber{URL: "wss://bsky.network", Keys: keys}
	err = s.Run(context.Background(), func(ctx context.Context, ev client.Event) error {
		switch e := ev.(type) {
		case *client.Commit:
			if e.VerifyErr != nil {
				fmt.Fprintln(os.Stderr, "unverified commit:", e.Repo, e.VerifyErr)
				return nil
			}
			for _, op := range e.Ops {
				if op.Collection() == "app.bsky.feed.post" && op.Record != nil {
					js, _ := op.JSON()
					fmt.Printf("%d %s %s\n", e.Seq, e.Repo, js)
				}
			}
		case *client.Info:
			fmt.Fprintln(os.Stderr, "info:", e.Name, e.Message)
		}
		return nil
	})
	// Save s.LastSeq() to resume later from the same point.
	log.Fatal(err)
}
