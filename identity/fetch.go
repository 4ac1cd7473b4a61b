package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	indigo "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// fetchDID resolves a DID document over the network and extracts the
// Identity, then verifies the claimed handle (unless SkipHandleVerification).
// It runs in a cache flight, under the flight's timeout.
func (r *Resolver) fetchDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		// A DID made by conversion, not parsing: never put it in a URL.
		return nil, fmt.Errorf("identity: resolve %q: %w: %w", did, ErrDIDResolutionFailed, err)
	}
	start := time.Now()
	doc, err := r.resolveDocument(ctx, did)
	r.log.Debug("identity: resolve DID", "did", did, "err", err, "duration", time.Since(start))
	if err != nil {
		if !errors.Is(err, ErrDIDNotFound) && !errors.Is(err, ErrDIDResolutionFailed) {
			err = fmt.Errorf("%w: %w", ErrDIDResolutionFailed, err)
		}
		return nil, fmt.Errorf("identity: resolve %s: %w", did, err)
	}
	id := newIdentity(doc, r.opts.AllowInsecure)
	if id.DeclaredHandle != "" && !r.opts.SkipHandleVerification && r.handleResolvesTo(ctx, id.DeclaredHandle, did) {
		id.Handle = id.DeclaredHandle
	}
	return id, nil
}

// resolveDocument fetches and parses the DID document: indigo's
// BaseDirectory for did:plc and did:web on public hosts, our own request for
// did:web:localhost%3APORT, which indigo refuses.
func (r *Resolver) resolveDocument(ctx context.Context, did syntax.DID) (*indigo.DIDDocument, error) {
	if did.Method() == "web" {
		host, local, err := localDIDWebHost(did)
		if err != nil {
			return nil, err
		}
		if local {
			if !r.opts.AllowInsecure {
				return nil, fmt.Errorf("%w: did:web on localhost needs AllowInsecure", ErrDIDResolutionFailed)
			}
			return r.resolveLocalDIDWeb(ctx, did, host)
		}
	}
	return r.dir.ResolveDID(ctx, did)
}

// localDIDWebHost decodes the host of a did:web and reports whether it is
// localhost, with or without a port. Ports are allowed only there.
func localDIDWebHost(did syntax.DID) (host string, local bool, err error) {
	id := did.Identifier()
	if strings.Contains(id, ":") {
		return "", false, fmt.Errorf("%w: did:web with a path", ErrUnsupportedDIDMethod)
	}
	host, err = url.PathUnescape(id)
	if err != nil {
		return "", false, fmt.Errorf("%w: did:web host %q: %w", ErrDIDResolutionFailed, id, err)
	}
	name, port, splitErr := net.SplitHostPort(host)
	if splitErr != nil {
		name, port = host, ""
	}
	if name != "localhost" {
		if port != "" || strings.Contains(host, ":") {
			return "", false, fmt.Errorf("%w: did:web host %q: ports are allowed only for localhost", ErrDIDResolutionFailed, host)
		}
		return host, false, nil
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", false, fmt.Errorf("%w: did:web host %q: bad port", ErrDIDResolutionFailed, host)
		}
	}
	return host, true, nil
}

// resolveLocalDIDWeb fetches http://localhost[:port]/.well-known/did.json.
func (r *Resolver) resolveLocalDIDWeb(ctx context.Context, did syntax.DID, host string) (*indigo.DIDDocument, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/.well-known/did.json", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDIDResolutionFailed, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: did:web fetch: %w", ErrDIDResolutionFailed, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: did:web HTTP status 404", ErrDIDNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: did:web HTTP status %d", ErrDIDResolutionFailed, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: did:web body: %w", ErrDIDResolutionFailed, err)
	}
	return parseDocument(did, b)
}

// parseDocument decodes a DID document and checks that it is about did, as
// indigo's ResolveDID does.
func parseDocument(did syntax.DID, b []byte) (*indigo.DIDDocument, error) {
	var doc indigo.DIDDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: JSON DID document: %w", ErrDIDResolutionFailed, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("%w: document id %q is not the DID", ErrDIDResolutionFailed, doc.DID)
	}
	return &doc, nil
}

// handleResolvesTo verifies the handle direction of a DID lookup. A fresh
// cached mapping to did is enough; anything else (no entry, a cached
// failure, another DID) is resolved again, so a handle that moved since it
// was cached is seen. Failures only leave the handle unverified.
func (r *Resolver) handleResolvesTo(ctx context.Context, h syntax.Handle, did syntax.DID) bool {
	if !h.AllowedTLD() {
		return false
	}
	if e, ok := r.handles.peek(h); ok && e.err == nil && e.val == did {
		return true
	}
	got, err := r.handles.get(ctx, h, r.now())
	return err == nil && got == did
}

// fetchHandle resolves a handle to a DID by DNS TXT and HTTPS well-known at
// once. DNS wins: the HTTPS answer is used only if DNS has none.
func (r *Resolver) fetchHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	if _, err := syntax.ParseHandle(string(h)); err != nil {
		return "", fmt.Errorf("identity: resolve handle %q: %w: %w", h, ErrHandleResolutionFailed, err)
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the HTTPS request once DNS has answered
	type result struct {
		did syntax.DID
		err error
	}
	viaHTTPS := make(chan result, 1)
	go func() {
		did, err := r.dir.ResolveHandleWellKnown(ctx, h)
		viaHTTPS <- result{did, err}
	}()
	did, dnsErr := r.resolveHandleDNS(ctx, h)
	if dnsErr == nil {
		r.log.Debug("identity: resolve handle", "handle", h, "did", did, "via", "dns", "duration", time.Since(start))
		return did, nil
	}
	res := <-viaHTTPS
	r.log.Debug("identity: resolve handle", "handle", h, "did", res.did, "dns_err", dnsErr, "https_err", res.err, "duration", time.Since(start))
	if res.err == nil {
		return res.did, nil
	}
	// The most specific failure wins; both are named.
	err := dnsErr
	if errors.Is(dnsErr, ErrHandleNotFound) && !errors.Is(res.err, ErrHandleNotFound) {
		err = res.err
	}
	if !errors.Is(err, ErrHandleNotFound) && !errors.Is(err, ErrHandleResolutionFailed) {
		err = fmt.Errorf("%w: %w", ErrHandleResolutionFailed, err)
	}
	return "", fmt.Errorf("identity: resolve handle %s: %w (DNS: %v; HTTPS: %v)", h, err, dnsErr, res.err)
}

// resolveHandleDNS looks up the TXT records of _atproto.<handle>. Records
// other than "did=..." and did= values that are not DIDs are ignored; two
// different DIDs are a failure (indigo's ResolveHandleDNS would take the
// first, hence this function).
func (r *Resolver) resolveHandleDNS(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	txt, err := r.opts.DNSResolver.LookupTXT(ctx, "_atproto."+h.String())
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return "", fmt.Errorf("%w: no _atproto TXT record", ErrHandleNotFound)
		}
		return "", fmt.Errorf("%w: DNS: %w", ErrHandleResolutionFailed, err)
	}
	return didFromTXT(txt)
}

// didFromTXT picks the DID out of the TXT records of _atproto.<handle>.
func didFromTXT(records []string) (syntax.DID, error) {
	var found syntax.DID
	for _, rec := range records {
		v, ok := strings.CutPrefix(rec, "did=")
		if !ok {
			continue
		}
		did, err := syntax.ParseDID(v)
		if err != nil {
			continue
		}
		if found != "" && found != did {
			return "", fmt.Errorf("%w: _atproto TXT records name two DIDs, %s and %s", ErrHandleResolutionFailed, found, did)
		}
		found = did
	}
	if found == "" {
		return "", fmt.Errorf("%w: no did= in _atproto TXT records", ErrHandleNotFound)
	}
	return found, nil
}
