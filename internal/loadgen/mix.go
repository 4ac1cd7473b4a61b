package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// Kind is one kind of operation of the mix.
type Kind int

// The kinds of operation, with the collection each writes.
const (
	KindLike    Kind = iota // create app.bsky.feed.like
	KindPost                // create app.bsky.feed.post
	KindFollow              // create app.bsky.graph.follow
	KindRepost              // create app.bsky.feed.repost
	KindDelete              // delete one of the account's earlier records
	KindProfile             // update app.bsky.actor.profile/self
	numKinds
)

var kindNames = [numKinds]string{"like", "post", "follow", "repost", "delete", "profile"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Collections of the record kinds.
const (
	CollectionLike    = "app.bsky.feed.like"
	CollectionPost    = "app.bsky.feed.post"
	CollectionFollow  = "app.bsky.graph.follow"
	CollectionRepost  = "app.bsky.feed.repost"
	CollectionProfile = "app.bsky.actor.profile"
)

// Mix is the weight of each kind among continuing commits, in percent
// (they need not add up to 100: they are relative weights).
type Mix [numKinds]int

// DefaultMix is roughly the network's firehose: likes dominate, then
// posts, follows and reposts; deletes are a few percent; profile updates
// are rare.
var DefaultMix = Mix{KindLike: 45, KindPost: 20, KindFollow: 15, KindRepost: 10, KindDelete: 8, KindProfile: 2}

// pick draws a kind by weight.
func (m *Mix) pick(rng *rand.Rand) Kind {
	total := 0
	for _, w := range m {
		total += w
	}
	n := rng.IntN(total)
	for k, w := range m {
		if n < w {
			return Kind(k)
		}
		n -= w
	}
	return KindLike
}

// accountGen is the generation state of one account: its record paths (for
// deletes) and the clock of its record keys.
type accountGen struct {
	rng     *rand.Rand
	did     string
	paths   []string // records that exist, but the profile
	micros  int64    // record key clock
	clockID uint
	profile bool // the profile record exists
}

func newAccountGen(seed int64, index int, start time.Time) *accountGen {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(index)))
	return &accountGen{
		rng:     rng,
		did:     randomDID(rng),
		micros:  start.UnixMicro() - 30*24*3600*1e6 + rng.Int64N(24*3600*1e6),
		clockID: uint(rng.IntN(1024)),
	}
}

const base32Chars = "abcdefghijklmnopqrstuvwxyz234567"

// randomDID returns a did:plc of valid syntax (24 base32 characters).
func randomDID(rng *rand.Rand) string {
	var b [24]byte
	for i := range b {
		b[i] = base32Chars[rng.IntN(32)]
	}
	return "did:plc:" + string(b[:])
}

// rkey returns the next record key (a TID, increasing).
func (a *accountGen) rkey() string {
	a.micros += 1 + a.rng.Int64N(2_000_000)
	return syntax.NewTID(a.micros, a.clockID).String()
}

// write returns the next write of kind k (a delete turns into a like when
// the account has nothing to delete).
func (a *accountGen) write(k Kind, createdAt string) repo.Write {
	if k == KindDelete {
		if len(a.paths) == 0 {
			k = KindLike
		} else {
			i := a.rng.IntN(len(a.paths))
			p := a.paths[i]
			a.paths[i] = a.paths[len(a.paths)-1]
			a.paths = a.paths[:len(a.paths)-1]
			return repo.Write{Action: repo.ActionDelete, Path: p}
		}
	}
	if k == KindProfile {
		a.profile = true
		return repo.Write{Action: repo.ActionUpdate, Path: CollectionProfile + "/self", Record: a.record(k, createdAt)}
	}
	coll := map[Kind]string{KindLike: CollectionLike, KindPost: CollectionPost, KindFollow: CollectionFollow, KindRepost: CollectionRepost}[k]
	p := coll + "/" + a.rkey()
	a.paths = append(a.paths, p)
	return repo.Write{Action: repo.ActionCreate, Path: p, Record: a.record(k, createdAt)}
}

// record builds a record of kind k shaped like its app.bsky lexicon.
func (a *accountGen) record(k Kind, createdAt string) []byte {
	var v map[string]any
	switch k {
	case KindPost:
		v = map[string]any{"$type": CollectionPost, "text": a.text(postLength(a.rng)), "langs": []any{"en"}, "createdAt": createdAt}
	case KindLike, KindRepost:
		coll := CollectionLike
		if k == KindRepost {
			coll = CollectionRepost
		}
		subject := map[string]any{
			"uri": "at://" + randomDID(a.rng) + "/" + CollectionPost + "/" + syntax.NewTID(a.micros-a.rng.Int64N(1e10), 0).String(),
			"cid": dagcbor.SumCBOR([]byte(a.text(16))).String(),
		}
		v = map[string]any{"$type": coll, "subject": subject, "createdAt": createdAt}
	case KindFollow:
		v = map[string]any{"$type": CollectionFollow, "subject": randomDID(a.rng), "createdAt": createdAt}
	case KindProfile:
		v = map[string]any{"$type": CollectionProfile, "displayName": a.text(5 + a.rng.IntN(25)), "description": a.text(20 + a.rng.IntN(236)), "createdAt": createdAt}
	default:
		panic(fmt.Sprintf("loadgen: no record for %v", k))
	}
	b, err := dagcbor.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("loadgen: encoding a %v record: %v", k, err))
	}
	return b
}

// postLength draws a post's text length: mostly short, up to the
// lexicon's 300 characters.
func postLength(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 55:
		return 20 + rng.IntN(100)
	case r < 90:
		return 120 + rng.IntN(130)
	default:
		return 250 + rng.IntN(51)
	}
}

var words = strings.Fields(`the a of to and in is it you that for on was with he as i his they be at one have this from
or had by word but what some we can out other were all there when up use your how said an each she which do their time
if will way about many then them write would like so these her long make thing see him two has look more day could go
come did number sound no most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every good me give our under name
very through just form sentence great think say help low line differ turn cause much mean before move right boy old too
same tell does set three want air well also play small end put home read hand port large spell add even land here must`)

// text returns about n characters of words.
func (a *accountGen) text(n int) string {
	var sb strings.Builder
	sb.Grow(n + 12)
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[a.rng.IntN(len(words))])
	}
	return sb.String()[:n]
}
