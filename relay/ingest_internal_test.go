package relay

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// The served status of a mirrored account, from ours and the host's
// (sync-spec §7.1), against the table of the rules.
func TestIngestCombineStatus(t *testing.T) {
	const (
		A  = store.StatusActive
		TD = store.StatusTakendown
		SU = store.StatusSuspended
		DL = store.StatusDeleted
		DA = store.StatusDeactivated
		DS = store.StatusDesynchronized
		TH = store.StatusThrottled
	)
	cases := []struct{ local, upstream, want store.Status }{
		{A, A, A}, {A, DA, DA}, {A, DL, DL}, {A, TD, TD}, {A, SU, SU},
		{TD, A, TD}, {TD, DA, TD}, {TD, DL, TD}, {SU, A, SU}, {SU, TD, SU},
		{DS, A, DS}, {DS, DA, DA}, {DS, DL, DL}, {TH, A, TH}, {TH, SU, SU},
	}
	for _, c := range cases {
		if got := combineStatus(c.local, c.upstream); got != c.want {
			t.Errorf("combine(%q, %q) = %q, want %q", c.local, c.upstream, got, c.want)
		}
	}
	// Our part is what the stored status says beyond the host's; when both
	// say the same it reads as the host's.
	for _, c := range []struct{ status, upstream, local store.Status }{
		{A, A, A}, {TD, A, TD}, {DS, A, DS}, {TD, DA, TD}, {DA, DA, A}, {TD, TD, A},
	} {
		if got := localStatus(&store.Account{Status: c.status, Upstream: c.upstream}); got != c.local {
			t.Errorf("localStatus(%q, %q) = %q, want %q", c.status, c.upstream, got, c.local)
		}
	}
}

func TestIngestUpstreamStatus(t *testing.T) {
	cases := []struct {
		active bool
		status string
		want   store.Status
	}{
		{true, "", store.StatusActive},
		{true, "desynchronized", store.StatusActive}, // the host's own hop
		{true, "throttled", store.StatusActive},
		{false, "takendown", store.StatusTakendown},
		{false, "suspended", store.StatusSuspended},
		{false, "deleted", store.StatusDeleted},
		{false, "deactivated", store.StatusDeactivated},
		{false, "", store.StatusDeactivated},
		{false, "inactive", store.StatusDeactivated},
		{false, "throttled", store.StatusDeactivated},
	}
	for _, c := range cases {
		if got := upstreamStatus(&wire.AccountEvent{Active: c.active, Status: c.status}); got != c.want {
			t.Errorf("upstream {active %v, status %q} = %q, want %q", c.active, c.status, got, c.want)
		}
	}
}

func TestIngestSameHost(t *testing.T) {
	cases := []struct {
		endpoint, hostname string
		want               bool
	}{
		{"https://pds.example.com", "pds.example.com", true},
		{"https://PDS.Example.com", "pds.example.com", true},
		{"https://pds.example.com:443", "pds.example.com", true},
		{"http://localhost:2583", "localhost:2583", true},
		{"http://127.0.0.1:80", "127.0.0.1", true},
		{"https://pds.example.com:8443", "pds.example.com", false},
		{"https://pds.example.com", "other.example.com", false},
		{"https://pds.example.com", "pds.example.com:443", false}, // hostnames carry no default port
		{"", "pds.example.com", false},
		{"not a url", "", false},
	}
	for _, c := range cases {
		if got := sameHost(c.endpoint, c.hostname); got != c.want {
			t.Errorf("sameHost(%q, %q) = %v", c.endpoint, c.hostname, got)
		}
	}
}

func TestIngestStaleCommit(t *testing.T) {
	c1, c2 := dagcbor.SumCBOR([]byte{0xa0}), dagcbor.SumCBOR([]byte{0x80})
	head := store.Head{Commit: c1, Rev: "3lbmqhtxvhs2m"}
	cases := []struct {
		rev, since string
		commit     cid.Cid
		stale      bool
	}{
		{"3lbmqhtxvhs2m", "3lbmqhtxvhs2k", c1, true},  // the head again
		{"3lbmqhtxvhs2m", "3lbmqhtxvhs2k", c2, false}, // another commit at the head's rev: a fork
		{"3lbmqhtxvhs2k", "3lbmqhtxvhs2c", c2, true},  // an older commit replayed
		{"3lbmqhtxvhs2k", "", c2, true},               // the first commit replayed
		{"3lbmqhtxvhs2k", "3lbmqhtxvhs2m", c2, false}, // claims to follow the head, older than it
		{"3lbmqhtxvhs2z", "3lbmqhtxvhs2m", c2, false}, // newer
	}
	for _, c := range cases {
		ev := &wire.CommitEvent{Rev: c.rev, Since: c.since, Commit: c.commit}
		if got := staleCommit(ev, head); got != c.stale {
			t.Errorf("rev %s since %q: stale %v, want %v", c.rev, c.since, got, c.stale)
		}
	}
}

func TestIngestCheckLabels(t *testing.T) {
	for _, c := range checkLabels {
		if got := checkLabel(&repo.VerifyError{Check: c.check}); got != c.label {
			t.Errorf("label of %v = %q, want %q", c.check, got, c.label)
		}
		if got := checkLabel(fmt.Errorf("wrapped: %w", c.check)); got != c.label {
			t.Errorf("label of wrapped %v = %q, want %q", c.check, got, c.label)
		}
	}
	if got := checkLabel(errors.New("something else")); got != "other" {
		t.Errorf("label of an unknown error %q", got)
	}
}
