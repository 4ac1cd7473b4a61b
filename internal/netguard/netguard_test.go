package netguard

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPublic(t *testing.T) {
	public := []string{"8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"}
	refused := []string{
		"127.0.0.1", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "fc00::1", "fd12::1",
		"169.254.1.1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "0.1.2.3",
		"100.64.0.1", "192.0.0.8", "198.18.0.1", "240.0.0.1", "255.255.255.255", "64:ff9b::1.2.3.4",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1",
	}
	for _, s := range public {
		if !Public(netip.MustParseAddr(s)) {
			t.Errorf("%s refused", s)
		}
	}
	for _, s := range refused {
		if Public(netip.MustParseAddr(s)) {
			t.Errorf("%s accepted", s)
		}
	}
	if Public(netip.Addr{}) {
		t.Error("the zero address accepted")
	}
}

func TestControl(t *testing.T) {
	if err := Control("tcp", "8.8.8.8:443", nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "not an address"} {
		if err := Control("tcp", a, nil); !errors.Is(err, ErrNonPublic) {
			t.Errorf("%s: %v", a, err)
		}
	}
	if Dialer(true, 0).Control != nil || Dialer(false, 0).Control == nil {
		t.Fatal("Dialer: the guard follows allowInsecure")
	}
}
