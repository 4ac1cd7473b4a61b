package relay

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	// errIdentity: the DID does not resolve to a usable identity (no
	// document, no key, no PDS).
	errIdentity = errors.New("identity unusable")
	// errWrongHost: the DID document names another PDS than the host the
	// event came from.
	errWrongHost = errors.New("event from a host that is not the account's PDS")
	// errApply: the commit verified, but its ops do not turn the stored
	// repository into the signed one.
	errApply = errors.New("ops do not apply to the stored repository")
)

// handle decides what one account event does and returns its outcome. The
// account's events run one at a time, in order, so nothing else writes the
// account meanwhile (the ingest is the writer of mirrored accounts).
func (in *Ingest) handle(qe *queuedEvent) string {
	ctx := context.Background() // identity lookups have their own timeouts
	did := qe.ev.EventDID()
	host := strings.ToLower(qe.hostname)
	a, err := in.account(did)
	if err != nil {
		in.log.Error("reading an account", "did", did, "err", err)
		return outcomeError
	}
	if a != nil && a.Hosted {
		return outcomeHostedHere
	}
	switch ev := qe.ev.(type) {
	case *wire.CommitEvent:
		return in.handleCommit(ctx, host, a, ev)
	case *wire.SyncEvent:
		return in.handleSync(ctx, host, a, ev)
	case *wire.IdentityEvent:
		return in.handleIdentity(ctx, host, a, ev)
	case *wire.AccountEvent:
		return in.handleAccount(ctx, host, a, ev)
	case *wire.HandleEvent:
		// Legacy: an identity change that names the new handle.
		return in.handleIdentity(ctx, host, a, &wire.IdentityEvent{Seq: ev.Seq, DID: ev.DID, Handle: ev.Handle, Time: ev.Time})
	case *wire.TombstoneEvent:
		// Legacy: the account is deleted.
		return in.handleAccount(ctx, host, a, &wire.AccountEvent{Seq: ev.Seq, DID: ev.DID, Active: false, Status: string(store.StatusDeleted), Time: ev.Time})
	case *wire.MigrateEvent:
		return in.handleMigrate(ctx, host, a, ev)
	}
	return outcomeSkipped // a DID event of a type this ingest does not know
}

// account reads an account, nil when the store has none.
func (in *Ingest) account(did string) (*store.Account, error) {
	a, err := in.db.Account(did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return a, err
}

// checkHost checks that did's DID document names hostname as its PDS; when
// it does not, the document is fetched again once (the account may have just
// moved here) before the event is refused. It returns the identity.
func (in *Ingest) checkHost(ctx context.Context, did, hostname string) (*identity.Identity, error) {
	d := syntax.DID(did)
	id, err := in.ident.LookupDID(ctx, d)
	if err == nil && sameHost(id.PDSEndpoint, hostname) {
		return id, nil
	}
	// Refreshing the key refreshes the whole document, at most once per
	// the resolver's refresh interval; the key's own error is not ours here.
	_, _ = in.ident.RefreshSigningKey(ctx, d)
	if id, err = in.ident.LookupDID(ctx, d); err != nil {
		return nil, fmt.Errorf("%w: %w", errIdentity, err)
	}
	if id.PDSEndpoint == "" {
		return nil, fmt.Errorf("%w: %s has no PDS endpoint", errIdentity, did)
	}
	if !sameHost(id.PDSEndpoint, hostname) {
		in.discoverPDS(did, id.PDSEndpoint)
		return nil, fmt.Errorf("%w: %s is hosted at %s, not %s", errWrongHost, did, id.PDSEndpoint, hostname)
	}
	return id, nil
}

// discoverPDS tells the host side of the PDS a mirrored account's DID
// document names, when the account's events come from elsewhere: it moved
// to a host we may not crawl yet. Only accounts we mirror count, so that a
// host cannot make us crawl hosts by naming DIDs it does not serve.
func (in *Ingest) discoverPDS(did, endpoint string) {
	if a, err := in.account(did); err == nil && a != nil && !a.Hosted && a.Status != store.StatusDeleted {
		in.opts.DiscoverHost(endpoint)
	}
}

// endpointHost is the host (and port, unless the scheme's default) of a PDS
// endpoint, in the form hostnames of upstream hosts take.
func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case u.Scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

func sameHost(endpoint, hostname string) bool {
	h := endpointHost(endpoint)
	return h != "" && h == strings.ToLower(hostname)
}

// verifiedHandle is the handle to store for an identity: only one verified
// both ways (a claimed handle could take another account's place in the
// handle index). Empty when there is none.
func verifiedHandle(id *identity.Identity) string {
	if id == nil || id.Handle == "" || id.Handle.IsInvalidHandle() {
		return ""
	}
	return string(id.Handle.Normalize())
}

// newMirrored is the record of an account first seen from hostname.
func (in *Ingest) newMirrored(did, hostname string, id *identity.Identity) *store.Account {
	return &store.Account{DID: did, Handle: verifiedHandle(id), Host: hostname, CreatedAt: in.opts.Now().UTC()}
}

// localStatus is the part of a mirrored account's status that is this
// service's own (a takedown, desynchronized, throttled), as opposed to what
// its host reported (Upstream).
func localStatus(a *store.Account) store.Status {
	if a.Status == a.Upstream {
		return store.StatusActive
	}
	return a.Status
}

// combineStatus is the status served for a mirrored account (sync-spec
// §7.1): our own takedown or suspension first, then the host's inactive
// statuses, then our own desynchronized or throttled.
func combineStatus(local, upstream store.Status) store.Status {
	switch local {
	case store.StatusTakendown, store.StatusSuspended:
		return local
	}
	if !upstream.Active() {
		return upstream
	}
	return local
}

// upstreamStatus maps an upstream #account to what we keep of it. A host's
// desynchronized or throttled describe its own hop and are not ours to
// repeat: an active account is active. An inactive one without a status we
// know (relay-ref would say "inactive", which is no status at all) is kept
// as deactivated, the mildest inactive status.
func upstreamStatus(ev *wire.AccountEvent) store.Status {
	if ev.Active {
		return store.StatusActive
	}
	switch st := store.Status(ev.Status); st {
	case store.StatusTakendown, store.StatusSuspended, store.StatusDeleted, store.StatusDeactivated:
		return st
	}
	return store.StatusDeactivated
}

// apply commits a change. A handle another account holds in our index (a
// stale claim) is dropped rather than failing the change.
func (in *Ingest) apply(ctx context.Context, c *store.Change) error {
	creating := c.Account != nil && c.Account.UID == 0
	_, err := in.db.Apply(ctx, c)
	if errors.Is(err, store.ErrHandleTaken) && c.Account != nil && c.Account.Handle != "" {
		in.log.Info("handle held by another account; stored without it", "did", c.Account.DID, "handle", c.Account.Handle)
		c.Account.Handle = ""
		if creating { // the failed attempt numbered the change
			c.Account.UID, c.UID = 0, 0
		}
		_, err = in.db.Apply(ctx, c)
	}
	if err != nil {
		return fmt.Errorf("relay: storing a change of %s: %w", changeDID(c), err)
	}
	return nil
}

func changeDID(c *store.Change) string {
	if c.Account != nil {
		return c.Account.DID
	}
	return fmt.Sprintf("uid %d", c.UID)
}

// accountEvent is the #account frame of an account's combined status.
func (in *Ingest) accountEvent(a *store.Account) store.FrameEncoder {
	return (&wire.Account{DID: a.DID, Active: a.Status.Active(), Status: string(a.Status), Time: in.opts.Now()}).AppendFrame
}

// markDesynchronized records that the account's copy is no longer known to
// be its host's (a verification failure, a commit we cannot apply), creating
// the account when it is new. An #account event says so when we hold
// content of the account; an account we never held anything of changes
// quietly. Accounts not active here are left as they are.
func (in *Ingest) markDesynchronized(ctx context.Context, a *store.Account) error {
	if a.UID != 0 && (a.Status == store.StatusDesynchronized || !a.Status.Active()) {
		return nil
	}
	local := localStatus(a)
	if local == store.StatusActive || local == store.StatusThrottled {
		local = store.StatusDesynchronized
	}
	a.Status = combineStatus(local, a.Upstream)
	c := &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
	if a.UID == 0 {
		c.OldHandle = ""
	}
	if a.Head.Defined() {
		c.Events = append(c.Events, in.accountEvent(a))
	}
	return in.apply(ctx, c)
}

// handleIdentity purges the identity cache, resolves the DID again, keeps
// the verified handle, and forwards #identity (with the handle only when it
// is the one the DID document declares, as relay-ref does).
func (in *Ingest) handleIdentity(ctx context.Context, hostname string, a *store.Account, ev *wire.IdentityEvent) string {
	in.ident.Purge(syntax.DID(ev.DID))
	id, err := in.checkHost(ctx, ev.DID, hostname)
	if o := hostOutcome(err); o != "" {
		return o
	}
	var c *store.Change
	if a == nil {
		c = &store.Change{Account: in.newMirrored(ev.DID, hostname, id)}
	} else {
		c = &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
		a.Handle, a.Host = verifiedHandle(id), hostname
	}
	out := &wire.Identity{DID: ev.DID, Time: in.opts.Now()}
	if h, err := syntax.ParseHandle(ev.Handle); err == nil && id.DeclaredHandle != "" && h.Normalize() == id.DeclaredHandle {
		out.Handle = string(id.DeclaredHandle)
	}
	c.Events = append(c.Events, out.AppendFrame)
	if in.opts.LegacyEvents && out.Handle != "" {
		c.Events = append(c.Events, (&wire.Handle{DID: ev.DID, Handle: out.Handle, Time: out.Time}).AppendFrame)
	}
	if err := in.apply(ctx, c); err != nil {
		in.log.Error("identity event", "did", ev.DID, "err", err)
		return outcomeError
	}
	return outcomeForwarded
}

// handleAccount stores the status the host reports, combines it with ours
// and forwards #account with the combined state. A deletion also removes
// the account's repository and purges its earlier events, as the host did.
func (in *Ingest) handleAccount(ctx context.Context, hostname string, a *store.Account, ev *wire.AccountEvent) string {
	up := upstreamStatus(ev)
	id, err := in.checkHost(ctx, ev.DID, hostname)
	if errors.Is(err, errIdentity) && up == store.StatusDeleted && a != nil && a.Host == hostname {
		err = nil // a deleted account's DID may no longer resolve (a tombstone)
	}
	if o := hostOutcome(err); o != "" {
		return o
	}
	var c *store.Change
	if a == nil {
		if up == store.StatusDeleted {
			return outcomeUnknownDeleted
		}
		a = in.newMirrored(ev.DID, hostname, id)
		c = &store.Change{Account: a}
	} else {
		c = &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
		a.Host = hostname
	}
	local := localStatus(a)
	a.Upstream = up
	a.Status = combineStatus(local, up)
	if up == store.StatusDeleted && a.UID != 0 {
		if err := in.deletionChange(a, c); err != nil {
			in.log.Error("account deletion", "did", ev.DID, "err", err)
			return outcomeError
		}
	}
	c.Events = append(c.Events, in.accountEvent(a))
	if in.opts.LegacyEvents && c.Delete {
		c.Events = append(c.Events, (&wire.Tombstone{DID: a.DID, Time: in.opts.Now()}).AppendFrame)
	}
	if err := in.apply(ctx, c); err != nil {
		in.log.Error("account event", "did", ev.DID, "err", err)
		return outcomeError
	}
	return outcomeForwarded
}

// handleMigrate handles the legacy #migrate: the DID is resolved afresh
// (the event itself is only a hint: the DID document is the authority) and,
// when its PDS is another host than the account's, the account moves there
// (the new host's events are accepted from then on) and #identity says so.
// The event may come from the old host, so it is not checked against the
// sending host. An account never seen, or one whose PDS did not change, is
// counted and skipped.
func (in *Ingest) handleMigrate(ctx context.Context, hostname string, a *store.Account, ev *wire.MigrateEvent) string {
	d := syntax.DID(ev.DID)
	in.ident.Purge(d)
	if a == nil {
		return outcomeLegacy
	}
	id, err := in.ident.LookupDID(ctx, d)
	if err != nil {
		in.log.Info("#migrate: the DID does not resolve", "did", ev.DID, "host", hostname, "err", err)
		return outcomeIdentity
	}
	to := endpointHost(id.PDSEndpoint)
	if to == "" {
		return outcomeIdentity
	}
	if to == strings.ToLower(a.Host) {
		return outcomeLegacy
	}
	if _, err := ParseHostAddr(to, in.opts.AllowInsecure); err != nil {
		in.log.Info("#migrate: the new PDS is not a host we crawl", "did", ev.DID, "pds", id.PDSEndpoint, "err", err)
		return outcomeIdentity
	}
	in.opts.DiscoverHost(id.PDSEndpoint)
	c := &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
	a.Handle, a.Host = verifiedHandle(id), to
	now := in.opts.Now()
	out := &wire.Identity{DID: ev.DID, Handle: string(id.DeclaredHandle), Time: now}
	c.Events = append(c.Events, out.AppendFrame)
	if in.opts.LegacyEvents {
		c.Events = append(c.Events, (&wire.Migrate{DID: ev.DID, MigrateTo: to, Time: now}).AppendFrame)
		if out.Handle != "" {
			c.Events = append(c.Events, (&wire.Handle{DID: ev.DID, Handle: out.Handle, Time: now}).AppendFrame)
		}
	}
	if err := in.apply(ctx, c); err != nil {
		in.log.Error("migrate event", "did", ev.DID, "err", err)
		return outcomeError
	}
	return outcomeForwarded
}

// deletionChange makes c remove the account's repository and purge its
// earlier events (as host.DeleteAccount does for hosted accounts).
func (in *Ingest) deletionChange(a *store.Account, c *store.Change) error {
	seqs, err := in.db.EventSeqs(a.UID)
	if err != nil {
		return err
	}
	_, colls, err := in.db.Collections(a.UID)
	if err != nil {
		return err
	}
	c.Delete, c.PurgeEvents = true, seqs
	for _, coll := range colls {
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll})
	}
	a.Handle = ""
	return nil
}

// hostOutcome is the outcome of a failed checkHost, "" when it passed.
func hostOutcome(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errWrongHost):
		return outcomeWrongHost
	}
	return outcomeIdentity
}
