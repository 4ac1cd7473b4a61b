package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// handleCommit verifies an upstream #commit against the account's key and
// stored head (sync-spec §5.3), applies it to the stored repository and
// re-broadcasts it, in one store change. A commit that fails is not
// forwarded: the account is marked desynchronized and resynced.
func (in *Ingest) handleCommit(ctx context.Context, hostname string, a *store.Account, ev *wire.CommitEvent) string {
	if a != nil {
		if !a.Status.Active() {
			return outcomeInactive
		}
		if a.Head.Defined() && staleCommit(ev, a.Head) {
			return outcomeStale
		}
	}
	id, err := in.checkHost(ctx, ev.Repo, hostname)
	if o := hostOutcome(err); o != "" {
		return o
	}
	if a != nil && a.Status == store.StatusDesynchronized {
		in.requestResync(ev.Repo, hostname, false)
		return outcomeDesynchronized
	}
	moved := false
	if a == nil {
		a = in.newMirrored(ev.Repo, hostname, id)
	} else if a.Host != hostname {
		a.Host, moved = hostname, true // the DID document names this host now
	}
	if !a.Head.Defined() && (ev.Since != "" || ev.PrevData.Defined()) {
		// It continues a repository we do not hold: fetch it whole.
		return in.desynchronize(ctx, a, hostname, outcomeResync)
	}
	vc, err := in.verifyCommit(ctx, ev, a)
	switch {
	case err == nil && in.opts.Lean:
		err = in.applyLean(ctx, a, ev, vc, moved) // lean.go
	case err == nil:
		err = in.applyCommit(ctx, a, ev, vc, moved)
	}
	switch {
	case err == nil:
		return outcomeApplied
	case repo.FailedCheck(err) != nil, errors.Is(err, errApply):
		in.m.failure(err)
		in.log.Info("upstream commit refused", "did", ev.Repo, "host", hostname, "rev", ev.Rev, "check", checkLabel(err), "err", err)
		return in.desynchronize(ctx, a, hostname, outcomeInvalid)
	case errors.Is(err, errIdentity):
		return outcomeIdentity
	case errors.Is(err, mst.ErrNotFound):
		// The stored tree lacks a node (kept lean before): fetch it whole.
		return in.desynchronize(ctx, a, hostname, outcomeResync)
	}
	in.log.Error("applying an upstream commit", "did", ev.Repo, "rev", ev.Rev, "err", err)
	return outcomeError
}

// desynchronize marks the account desynchronized and asks for a resync.
func (in *Ingest) desynchronize(ctx context.Context, a *store.Account, hostname, outcome string) string {
	if err := in.markDesynchronized(ctx, a); err != nil {
		in.log.Error("marking an account desynchronized", "did", a.DID, "err", err)
		return outcomeError
	}
	in.requestResync(a.DID, hostname, false)
	return outcome
}

// staleCommit reports whether a commit is one we already have or an older
// one replayed (an upstream resending from an older cursor): dropped
// quietly. A commit at or before the head that claims to follow it is not a
// replay but a broken chain, and goes on to fail verification.
func staleCommit(ev *wire.CommitEvent, head store.Head) bool {
	if ev.Rev == head.Rev {
		return ev.Commit == head.Commit
	}
	return ev.Rev < head.Rev && ev.Since < ev.Rev
}

// verifyCommit runs repo.VerifyCommitMessage with the account's current key
// and, after a signature failure, once more with a key fetched afresh.
func (in *Ingest) verifyCommit(ctx context.Context, ev *wire.CommitEvent, a *store.Account) (*repo.VerifiedCommit, error) {
	if _, err := syntax.ParseDatetimeLenient(ev.Time); err != nil {
		return nil, &repo.VerifyError{Check: repo.ErrMalformed, Detail: fmt.Sprintf("time %q", ev.Time), Err: err}
	}
	opts := repo.VerifyOptions{Now: in.opts.Now(), Lenient: in.opts.Lenient}
	if a.Head.Defined() {
		opts.Prev = &repo.RepoState{Rev: syntax.TID(a.Head.Rev), Data: a.Head.Data}
	}
	msg := ev.Message()
	var vc *repo.VerifiedCommit
	err := in.withKey(ctx, ev.Repo, func(key atcrypto.PublicKey) (err error) {
		opts.Key = key
		vc, err = repo.VerifyCommitMessage(msg, opts)
		return err
	})
	return vc, err
}

// withKey runs verify with the account's signing key and, when the
// signature fails, once more with the key of a freshly fetched document.
func (in *Ingest) withKey(ctx context.Context, did string, verify func(atcrypto.PublicKey) error) error {
	d := syntax.DID(did)
	key, err := in.ident.SigningKey(ctx, d)
	if err != nil {
		return fmt.Errorf("%w: %w", errIdentity, err)
	}
	err = verify(key)
	if !errors.Is(err, repo.ErrSignature) {
		return err
	}
	fresh, kerr := in.ident.RefreshSigningKey(ctx, d)
	if kerr != nil || fresh.Equal(key) {
		return err
	}
	return verify(fresh)
}

// applyCommit stores a verified commit and re-broadcasts it with the
// upstream's blocks unchanged. When the inversion ran against the stored
// root (prevData equal to the stored data, which verifyCommit checked), its
// delta is exactly what changes in the stored tree: the change is built from
// it without reading a stored node. Otherwise (a lenient commit without
// prevData) the ops are applied forward on the stored tree, which must give
// the signed root.
func (in *Ingest) applyCommit(ctx context.Context, a *store.Account, ev *wire.CommitEvent, vc *repo.VerifiedCommit, moved bool) error {
	res := commitResult(ev, vc)
	res.NewBlocks = append(res.NewBlocks, repo.Block{CID: vc.CommitCID, Data: vc.Blocks[vc.CommitCID]})
	var tree *mst.Tree
	if d := vc.Delta; d != nil && a.Head.Defined() && ev.PrevData == a.Head.Data {
		for _, c := range d.NewNodes {
			res.NewBlocks = append(res.NewBlocks, repo.Block{CID: c, Data: vc.Blocks[c]})
		}
		res.DeadNodes = d.DeadNodes
	} else {
		var err error
		if tree, err = in.applyForward(a, vc); err != nil {
			return err
		}
		if err := tree.NewBlocks(func(c cid.Cid, data []byte) error {
			res.NewBlocks = append(res.NewBlocks, repo.Block{CID: c, Data: data})
			return nil
		}); err != nil {
			return fmt.Errorf("relay: new nodes of %s: %w", a.DID, err)
		}
	}
	added := map[cid.Cid]bool{}
	for _, op := range vc.Ops {
		if !op.CID.Defined() || added[op.CID] {
			continue
		}
		data, ok := vc.Blocks[op.CID]
		if !ok {
			return &repo.VerifyError{Check: repo.ErrMissingBlock, Detail: fmt.Sprintf("record %s of %s", op.CID, op.Path)}
		}
		added[op.CID] = true
		res.NewBlocks = append(res.NewBlocks, repo.Block{CID: op.CID, Data: data})
	}
	c, err := in.repos.CommitChange(a, res, tree, in.opts.Now())
	if err != nil {
		return err
	}
	return in.applyCommitChange(ctx, a, c, moved)
}

// commitResult is the commit as repostore takes it: the verified commit with
// the upstream's ops and blocks slice.
func commitResult(ev *wire.CommitEvent, vc *repo.VerifiedCommit) *repo.CommitResult {
	return &repo.CommitResult{
		Commit: vc.Commit, CID: vc.CommitCID, Since: syntax.TID(ev.Since), PrevData: ev.PrevData,
		Ops: ev.Ops, Slice: ev.Blocks,
	}
}

// applyCommitChange commits the change of an upstream commit; it carries
// the account record too when the commit creates the account or follows it
// to a new host.
func (in *Ingest) applyCommitChange(ctx context.Context, a *store.Account, c *store.Change, moved bool) error {
	if a.UID == 0 || moved {
		c.Account = a
		c.OldHandle = a.Handle
		if a.UID == 0 {
			c.OldHandle = ""
		}
	}
	return in.apply(ctx, c)
}

// applyForward applies the commit's ops to the stored tree (read through
// the commit's blocks, then the store's) and checks the result is the
// signed root.
func (in *Ingest) applyForward(a *store.Account, vc *repo.VerifiedCommit) (*mst.Tree, error) {
	bg := overlayBlocks{first: vc.Blocks, then: in.repos.Blocks(a.UID)}
	tree := mst.NewEmpty(bg)
	if a.Head.Defined() {
		var err error
		if tree, err = mst.Load(bg, a.Head.Data); err != nil {
			return nil, fmt.Errorf("relay: loading the stored tree of %s: %w", a.DID, err)
		}
	}
	ops := make([]mst.Op, len(vc.Ops))
	for i, op := range vc.Ops {
		ops[i] = mst.Op{Key: op.Path, Old: op.Prev, New: op.CID}
	}
	if err := tree.Apply(ops); err != nil {
		if errors.Is(err, mst.ErrConflict) {
			return nil, fmt.Errorf("%w: %w", errApply, err)
		}
		return nil, fmt.Errorf("relay: applying the ops of %s: %w", a.DID, err)
	}
	root, err := tree.Root()
	if err != nil {
		return nil, fmt.Errorf("relay: hashing the tree of %s: %w", a.DID, err)
	}
	if root != vc.Commit.Data {
		return nil, fmt.Errorf("%w: the ops give root %s, the commit says %s", errApply, root, vc.Commit.Data)
	}
	return tree, nil
}

// overlayBlocks reads the commit's blocks first, then the stored ones.
type overlayBlocks struct {
	first mst.MemBlocks
	then  mst.BlockGetter
}

var _ mst.BlockGetter = overlayBlocks{}

func (o overlayBlocks) GetBlock(c cid.Cid) ([]byte, error) {
	if b, ok := o.first[c]; ok {
		return b, nil
	}
	return o.then.GetBlock(c)
}

// handleSync handles an upstream #sync (sync-spec §5.2): verified like a
// commit's signature; a rev at or before the stored one is ignored;
// otherwise the repository moved in a way the firehose did not carry, and
// it is fetched whole (the resync then broadcasts our own #sync).
func (in *Ingest) handleSync(ctx context.Context, hostname string, a *store.Account, ev *wire.SyncEvent) string {
	if a != nil && !a.Status.Active() {
		return outcomeInactive
	}
	if _, err := in.checkHost(ctx, ev.DID, hostname); hostOutcome(err) != "" {
		return hostOutcome(err)
	}
	var commit *repo.Commit
	err := in.withKey(ctx, ev.DID, func(key atcrypto.PublicKey) (err error) {
		commit, _, err = repo.VerifySyncMessage(ev.Message(), key)
		return err
	})
	if err == nil && commit.Rev.Time().After(in.opts.Now().Add(repo.MaxRevSkew)) {
		err = &repo.VerifyError{Check: repo.ErrFutureRev, Detail: string(commit.Rev)}
	}
	switch {
	case errors.Is(err, errIdentity):
		return outcomeIdentity
	case err != nil:
		in.m.failure(err)
		in.log.Info("upstream sync refused", "did", ev.DID, "host", hostname, "check", checkLabel(err), "err", err)
		if a == nil {
			return outcomeInvalid
		}
		return in.desynchronize(ctx, a, hostname, outcomeInvalid)
	}
	if a != nil && a.Head.Defined() && a.Status != store.StatusDesynchronized && string(commit.Rev) <= a.Head.Rev {
		return outcomeStale
	}
	if !in.requestResync(ev.DID, hostname, false) && a != nil {
		// Not queued now (busy, or backing off): remember the account
		// needs one, so that a later event asks again.
		if err := in.markDesynchronized(ctx, a); err != nil {
			in.log.Error("marking an account desynchronized", "did", a.DID, "err", err)
			return outcomeError
		}
	}
	return outcomeResync
}
