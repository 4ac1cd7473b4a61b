package host

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// secrets are what the store keeps of a hosted account's credentials.
type secrets struct {
	signing   atcrypto.PrivateKeyExportable
	rotation  atcrypto.PrivateKeyExportable // nil for an adopted DID
	tokenHash []byte                        // sha256 of the bearer token's secret part
}

func (s *secrets) encode() []byte {
	m := map[string]any{"signing": s.signing.Multibase(), "token": s.tokenHash}
	if s.rotation != nil {
		m["rotation"] = s.rotation.Multibase()
	}
	b, err := dagcbor.Marshal(m)
	if err != nil {
		panic("host: encoding secrets: " + err.Error())
	}
	return b
}

func decodeSecrets(b []byte) (*secrets, error) {
	v, err := dagcbor.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("host: decoding secrets: %w", err)
	}
	m, _ := v.(map[string]any)
	s := &secrets{}
	sk, _ := m["signing"].(string)
	if s.signing, err = atcrypto.ParsePrivateMultibase(sk); err != nil {
		return nil, fmt.Errorf("host: decoding signing key: %w", err)
	}
	if rk, ok := m["rotation"].(string); ok {
		if s.rotation, err = atcrypto.ParsePrivateMultibase(rk); err != nil {
			return nil, fmt.Errorf("host: decoding rotation key: %w", err)
		}
	}
	s.tokenHash, _ = m["token"].([]byte)
	return s, nil
}

func (h *Host) secrets(uid uint64) (*secrets, error) {
	b, err := h.db.Secret(uid)
	if err != nil {
		return nil, fmt.Errorf("host: secrets of uid %d: %w", uid, err)
	}
	return decodeSecrets(b)
}

// newToken returns a bearer token for did and the hash the store keeps. The
// token names its account (base64url of the DID) so it can be checked
// without an index: "<b64 did>.<b64 secret>".
func newToken(did string) (string, []byte, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(secret[:])
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(did)) + "." + enc.EncodeToString(secret[:]), sum[:], nil
}

// ErrBadToken is returned for a bearer token that names no hosted account
// or does not match.
var ErrBadToken = errors.New("invalid token")

// AccountForToken returns the DID a bearer token belongs to.
func (h *Host) AccountForToken(ctx context.Context, token string) (string, error) {
	enc := base64.RawURLEncoding
	didPart, secretPart, ok := strings.Cut(token, ".")
	if !ok {
		return "", ErrBadToken
	}
	did, err1 := enc.DecodeString(didPart)
	secret, err2 := enc.DecodeString(secretPart)
	if err1 != nil || err2 != nil {
		return "", ErrBadToken
	}
	a, err := h.account(string(did))
	if err != nil {
		return "", ErrBadToken
	}
	s, err := h.secrets(a.UID)
	if err != nil {
		return "", ErrBadToken
	}
	sum := sha256.Sum256(secret)
	if len(s.tokenHash) != len(sum) || subtle.ConstantTimeCompare(sum[:], s.tokenHash) != 1 {
		return "", ErrBadToken
	}
	return a.DID, nil
}

// CreateAccountInput is what com.atproto.server.createAccount takes.
type CreateAccountInput struct {
	Handle string
	// DID and SigningKey (a multibase private key) adopt an existing
	// identity; both empty registers a new did:plc.
	DID        string
	SigningKey string
}

// CreatedAccount is the new account and its bearer token.
type CreatedAccount struct {
	DID    string
	Handle string
	Token  string
}

// CreateAccount creates a hosted account. A new did:plc account starts with
// an empty repository (events #identity, #account, the first #commit and
// #sync, as the reference PDS emits); an adopted identity starts with no
// commit (#identity and #account only) until it imports its repository or
// writes its first record.
func (h *Host) CreateAccount(ctx context.Context, in CreateAccountInput) (*CreatedAccount, error) {
	handle, err := syntax.ParseHandle(in.Handle)
	if err != nil {
		return nil, fmt.Errorf("host: %w: %v", ErrInvalidHandle, err)
	}
	handle = handle.Normalize()
	if did, err := h.db.DIDForHandle(string(handle)); err == nil && did != "" {
		return nil, fmt.Errorf("host: %s: %w", handle, ErrHandleTaken)
	}
	sec := &secrets{}
	var did string
	adopted := in.DID != "" || in.SigningKey != ""
	switch {
	case in.DID != "" || in.SigningKey != "":
		d, err := syntax.ParseDID(in.DID)
		if err != nil {
			return nil, fmt.Errorf("host: did: %w", err)
		}
		if sec.signing, err = atcrypto.ParsePrivateMultibase(in.SigningKey); err != nil {
			return nil, fmt.Errorf("host: %w: %v", ErrBadKey, err)
		}
		did = string(d)
	default:
		if h.opts.DIDs == nil {
			return nil, ErrNoDIDCreator
		}
		if sec.signing, err = atcrypto.GeneratePrivateKeyK256(); err != nil {
			return nil, err
		}
		if sec.rotation, err = atcrypto.GeneratePrivateKeyK256(); err != nil {
			return nil, err
		}
		if did, err = h.opts.DIDs.CreateDID(ctx, string(handle), sec.signing, sec.rotation, h.opts.PublicURL); err != nil {
			return nil, fmt.Errorf("host: registering a DID: %w", err)
		}
	}
	token, hash, err := newToken(did)
	if err != nil {
		return nil, err
	}
	sec.tokenHash = hash

	unlock := h.locks.Lock(did)
	defer unlock()
	now := h.opts.Now()
	acct := &store.Account{DID: did, Handle: string(handle), Hosted: true, CreatedAt: now.UTC()}
	c := &store.Change{Account: acct, Secret: sec.encode()}
	c.Events = []store.FrameEncoder{
		(&wire.Identity{DID: did, Handle: string(handle), Time: now}).AppendFrame,
		(&wire.Account{DID: did, Active: true, Time: now}).AppendFrame,
	}
	if adopted {
		// An adopted identity usually brings its repository (importRepo), so
		// no empty first commit is made: its rev would outrank the import's.
	} else {
		tree := mst.NewEmpty(nil)
		res, err := repo.BuildCommit(tree, nil, nil, repo.CommitOptions{DID: syntax.DID(did), Key: sec.signing, Clock: h.opts.Clock})
		if err != nil {
			return nil, err
		}
		cc, err := h.repos.CommitChange(acct, res, tree, now)
		if err != nil {
			return nil, err
		}
		c.Head, c.NewBlocks = cc.Head, cc.NewBlocks
		c.Events = append(c.Events, cc.Events...)
		c.Events = append(c.Events, repostore.SyncEvent(did, res.CID, res.Commit.Bytes(), string(res.Commit.Rev), now))
	}
	if _, err := h.db.Apply(ctx, c); err != nil {
		if errors.Is(err, store.ErrHandleTaken) {
			return nil, fmt.Errorf("host: %s: %w", handle, ErrHandleTaken)
		}
		return nil, fmt.Errorf("host: creating %s: %w", did, err)
	}
	h.log.Info("account created", "did", did, "handle", handle)
	return &CreatedAccount{DID: did, Handle: string(handle), Token: token}, nil
}

// SetStatus changes a hosted account's status (active, takendown,
// suspended, deactivated) and emits #account; on reactivation also
// #identity and #sync, as the reference PDS does.
func (h *Host) SetStatus(ctx context.Context, did string, status store.Status) error {
	if status == store.StatusDeleted {
		return h.DeleteAccount(ctx, did)
	}
	unlock := h.locks.Lock(did)
	defer unlock()
	a, err := h.account(did)
	if err != nil {
		return err
	}
	if a.Status == status {
		return nil
	}
	wasActive := a.Status.Active()
	a.Status = status
	now := h.opts.Now()
	c := &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
	c.Events = append(c.Events, (&wire.Account{DID: did, Active: status.Active(), Status: string(status), Time: now}).AppendFrame)
	if status.Active() && !wasActive && a.Head.Defined() {
		commitBytes, _, err := h.db.Block(a.UID, a.Head.Commit)
		if err != nil {
			return fmt.Errorf("host: reading the head commit: %w", err)
		}
		commit, err := repo.DecodeCommit(commitBytes)
		if err != nil {
			return err
		}
		c.Events = append(c.Events,
			(&wire.Identity{DID: did, Handle: a.Handle, Time: now}).AppendFrame,
			repostore.SyncEvent(did, a.Head.Commit, commitBytes, string(commit.Rev), now))
	}
	if _, err := h.db.Apply(ctx, c); err != nil {
		return fmt.Errorf("host: status of %s: %w", did, err)
	}
	return nil
}

// DeleteAccount deletes a hosted account: its repository, blobs and secrets
// go, its earlier events are purged from the log (as the reference PDS
// does), and one #account {active: false, status: deleted} is emitted. The
// account record stays, with status deleted, so the DID is known as gone.
func (h *Host) DeleteAccount(ctx context.Context, did string) error {
	unlock := h.locks.Lock(did)
	defer unlock()
	a, err := h.account(did)
	if err != nil {
		return err
	}
	seqs, err := h.db.EventSeqs(a.UID)
	if err != nil {
		return err
	}
	_, colls, err := h.db.Collections(a.UID)
	if err != nil {
		return err
	}
	oldHandle := a.Handle
	a.Status, a.Handle = store.StatusDeleted, ""
	c := &store.Change{UID: a.UID, Account: a, OldHandle: oldHandle, Delete: true, PurgeEvents: seqs}
	for _, coll := range colls {
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll})
	}
	c.Events = append(c.Events, (&wire.Account{DID: did, Active: false, Status: string(store.StatusDeleted), Time: h.opts.Now()}).AppendFrame)
	if _, err := h.db.Apply(ctx, c); err != nil {
		return fmt.Errorf("host: deleting %s: %w", did, err)
	}
	if h.opts.Blobs != nil {
		if err := h.opts.Blobs.RemoveAll(a.UID); err != nil {
			h.log.Warn("removing the blobs of a deleted account", "did", did, "err", err)
		}
	}
	return nil
}

// PublicKey returns a hosted account's public signing key.
func (h *Host) PublicKey(a *store.Account) (atcrypto.PublicKey, error) {
	s, err := h.secrets(a.UID)
	if err != nil {
		return nil, err
	}
	return s.signing.PublicKey()
}
