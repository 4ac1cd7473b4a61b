package client

import (
	"context"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// KeySource gives the current #atproto signing key of an account, to check
// commit signatures. RefreshSigningKey is called once after a signature
// fails, to bypass a cache that may hold a rotated key. identity.Resolver
// is one; StaticKey and KeyFunc make others.
type KeySource interface {
	SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error)
	RefreshSigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error)
}

// purger is implemented by key sources with a cache (identity.Resolver):
// the Subscriber calls Purge on every #identity event.
type purger interface {
	Purge(did syntax.DID)
}

// KeyFunc adapts a function to a KeySource; a refresh calls it again.
type KeyFunc func(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error)

// SigningKey calls f.
func (f KeyFunc) SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	return f(ctx, did)
}

// RefreshSigningKey calls f.
func (f KeyFunc) RefreshSigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	return f(ctx, did)
}

// StaticKey is a KeySource that gives key for every DID: for checking one
// account's repository with a key the caller already has.
func StaticKey(key atcrypto.PublicKey) KeySource {
	return KeyFunc(func(context.Context, syntax.DID) (atcrypto.PublicKey, error) { return key, nil })
}

// ParseKey parses a public key given as "did:key:z..." or as a bare
// multibase Multikey "z...".
func ParseKey(s string) (atcrypto.PublicKey, error) {
	if len(s) > len("did:key:") && s[:len("did:key:")] == "did:key:" {
		k, err := atcrypto.ParsePublicDIDKey(s)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidArgument, s, err)
		}
		return k, nil
	}
	k, err := atcrypto.ParsePublicMultibase(s)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: not a did:key or a multibase key: %v", ErrInvalidArgument, s, err)
	}
	return k, nil
}

// signingKey gets did's key from ks, or the refreshed one.
func signingKey(ctx context.Context, ks KeySource, did syntax.DID, refresh bool) (atcrypto.PublicKey, error) {
	var k atcrypto.PublicKey
	var err error
	if refresh {
		k, err = ks.RefreshSigningKey(ctx, did)
	} else {
		k, err = ks.SigningKey(ctx, did)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", did, err)
	}
	if k == nil {
		return nil, fmt.Errorf("signing key of %s: none", did)
	}
	return k, nil
}
