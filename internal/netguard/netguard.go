// Package netguard decides which network addresses reservoir may dial on
// behalf of others (crawled hosts, PDS endpoints from DID documents,
// handle and did:web lookups): only globally routable unicast addresses,
// unless the operator allows insecure hosts (tests, private networks). The
// check runs on the address actually dialled, after name resolution, so a
// public name that resolves to 127.0.0.1 is refused too.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrNonPublic is returned (wrapped) for an address that is not public.
var ErrNonPublic = errors.New("not a public address")

// Public reports whether a is a globally routable unicast address: not
// loopback, private (RFC 1918, fc00::/7), link-local, multicast,
// unspecified, shared (100.64.0.0/10), or in the other special-purpose
// blocks below.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range special {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
}

// Control is a net.Dialer Control function refusing non-public addresses.
func Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNonPublic, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrNonPublic, ap.Addr())
	}
	return nil
}

// Dialer returns a dialer with the given timeout that refuses non-public
// addresses unless allowInsecure.
func Dialer(allowInsecure bool, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowInsecure {
		d.Control = Control
	}
	return d
}
