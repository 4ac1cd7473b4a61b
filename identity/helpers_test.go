package identity

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// fakeClock is the clock of the caches in tests: time moves only by Advance.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeDNS is a DNS server on loopback UDP answering TXT and A queries from
// tables; every other name is NXDOMAIN. It counts queries per name.
type fakeDNS struct {
	conn *net.UDPConn
	mu   sync.Mutex
	txt  map[string][]string
	a    map[string]netip.Addr
	seen map[string]int
}

func newFakeDNS(t testing.TB) *fakeDNS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: conn, txt: map[string][]string{}, a: map[string]netip.Addr{}, seen: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return d
}

// resolver returns a net.Resolver that sends every query to d.
func (d *fakeDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

func (d *fakeDNS) setTXT(name string, records ...string) {
	d.mu.Lock()
	d.txt[name] = records
	d.mu.Unlock()
}

func (d *fakeDNS) setA(name string, ip string) {
	d.mu.Lock()
	d.a[name] = netip.MustParseAddr(ip)
	d.mu.Unlock()
}

// queries returns how many queries (of any type) named name.
func (d *fakeDNS) queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[name]
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.conn.WriteToUDP(resp, from)
		}
	}
}

const (
	dnsTypeA   = 1
	dnsTypeTXT = 16
)

// answer builds the response to one query (RFC 1035 §4.1), or nil for
// garbage.
func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	var labels []string
	off := 12
	for {
		if off >= len(q) {
			return nil
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[off:off+l]))
		off += l
	}
	if off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	question := q[12 : off+4]
	name := strings.ToLower(strings.Join(labels, "."))

	d.mu.Lock()
	d.seen[name]++
	txt, hasTXT := d.txt[name]
	ip, hasA := d.a[name]
	d.mu.Unlock()

	var answers [][]byte
	switch {
	case qtype == dnsTypeTXT && hasTXT:
		for _, rec := range txt {
			var rdata []byte
			for s := rec; ; s = s[min(len(s), 255):] {
				chunk := s[:min(len(s), 255)]
				rdata = append(append(rdata, byte(len(chunk))), chunk...)
				if len(s) <= 255 {
					break
				}
			}
			answers = append(answers, dnsRR(dnsTypeTXT, rdata))
		}
	case qtype == dnsTypeA && hasA && ip.Is4():
		b := ip.As4()
		answers = append(answers, dnsRR(dnsTypeA, b[:]))
	}
	rcode := uint16(0)
	if !hasTXT && !hasA {
		rcode = 3 // NXDOMAIN
	}
	flags := 0x8000 | 0x0400 | 0x0080 | binary.BigEndian.Uint16(q[2:])&0x0100 | rcode
	resp := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q[0:]))
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = binary.BigEndian.AppendUint32(resp, 0) // no authority, no additional
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}

// dnsRR is a resource record for the question's name (pointer to offset 12).
func dnsRR(typ uint16, rdata []byte) []byte {
	rr := []byte{0xc0, 12}
	rr = binary.BigEndian.AppendUint16(rr, typ)
	rr = binary.BigEndian.AppendUint16(rr, 1)  // class IN
	rr = binary.BigEndian.AppendUint32(rr, 60) // TTL
	rr = binary.BigEndian.AppendUint16(rr, uint16(len(rdata)))
	return append(rr, rdata...)
}

// fakeNet is a pretend internet of HTTP(S) hosts: one handler answers for
// every host name from a table keyed by host (without port) and path, and
// counts requests. Unknown paths are 404. The TLS server takes any host name
// through client(); the plain server is reached at its real loopback
// address.
type fakeNet struct {
	tls, plain *httptest.Server

	mu     sync.Mutex
	routes map[string]fakeResponse
	hits   map[string]int
	agents map[string]bool
	// before, if set, runs before each answer (tests block or delay there).
	before func(r *http.Request)
}

type fakeResponse struct {
	status int
	body   []byte
}

func newFakeNet(t testing.TB) *fakeNet {
	t.Helper()
	n := &fakeNet{routes: map[string]fakeResponse{}, hits: map[string]int{}, agents: map[string]bool{}}
	n.tls = httptest.NewUnstartedServer(http.HandlerFunc(n.serve))
	n.tls.Config.ErrorLog = log.New(io.Discard, "", 0) // clients hang up on purpose
	n.tls.StartTLS()
	n.plain = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(func() {
		n.tls.Close()
		n.plain.Close()
	})
	return n
}

func (n *fakeNet) serve(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	key := host + r.URL.EscapedPath()
	n.mu.Lock()
	n.hits[key]++
	n.agents[r.Header.Get("User-Agent")] = true
	resp, ok := n.routes[key]
	before := n.before
	n.mu.Unlock()
	if before != nil {
		before(r)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if resp.status >= 300 && resp.status < 400 {
		w.Header().Set("Location", string(resp.body))
		w.WriteHeader(resp.status)
		return
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

// set answers GET host+path with status and body (for a redirect status,
// body is the Location).
func (n *fakeNet) set(host, path string, status int, body []byte) {
	n.mu.Lock()
	n.routes[host+path] = fakeResponse{status, body}
	n.mu.Unlock()
}

func (n *fakeNet) count(host, path string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[host+path]
}

func (n *fakeNet) setBefore(f func(*http.Request)) {
	n.mu.Lock()
	n.before = f
	n.mu.Unlock()
}

// client returns an HTTP client that sends every https:// request, whatever
// the host, to the TLS server, trusting its certificate.
func (n *fakeNet) client() *http.Client {
	tr := n.tls.Client().Transport.(*http.Transport).Clone()
	addr := n.tls.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.ServerName = "example.com" // a name in httptest's certificate
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	return &http.Client{Transport: tr}
}

// The test directory's host, reached through fakeNet.client.
const plcHost = "plc.test"

// env is a Resolver wired to a fakeNet, a fakeDNS and a fakeClock.
type env struct {
	net   *fakeNet
	dns   *fakeDNS
	clock *fakeClock
	r     *Resolver
}

// newEnv builds an env; opts fields left zero get the fakes (PLCURL
// https://plc.test, the fakeNet client, the fakeDNS resolver).
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{net: newFakeNet(t), dns: newFakeDNS(t), clock: newFakeClock()}
	if opts.PLCURL == "" {
		opts.PLCURL = "https://" + plcHost
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = e.net.client()
	}
	if opts.DNSResolver == nil {
		opts.DNSResolver = e.dns.resolver()
	}
	r, err := newResolver(opts, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	return e
}

// setDoc serves doc for did from the directory.
func (e *env) setDoc(did string, doc []byte) { e.net.set(plcHost, "/"+did, http.StatusOK, doc) }

// docRequests is how many times the directory was asked for did.
func (e *env) docRequests(did string) int { return e.net.count(plcHost, "/"+did) }

// docSpec describes a DID document in the reference layout.
type docSpec struct {
	did     string
	handle  string // alsoKnownAs at://handle; "" for none
	key     string // publicKeyMultibase; "" for no verification method
	keyType string // default Multikey
	pds     string // serviceEndpoint; "" for no service
}

func (s docSpec) json() []byte {
	doc := map[string]any{
		"@context": []string{
			"https://www.w3.org/ns/did/v1",
			"https://w3id.org/security/multikey/v1",
			"https://w3id.org/security/suites/secp256k1-2019/v1",
		},
		"id": s.did,
	}
	if s.handle != "" {
		doc["alsoKnownAs"] = []string{"at://" + s.handle}
	}
	if s.key != "" {
		typ := s.keyType
		if typ == "" {
			typ = "Multikey"
		}
		doc["verificationMethod"] = []map[string]string{{
			"id": s.did + "#atproto", "type": typ, "controller": s.did, "publicKeyMultibase": s.key,
		}}
	}
	if s.pds != "" {
		doc["service"] = []map[string]string{{
			"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": s.pds,
		}}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// newKey generates a private key of the curve ("k256" or "p256") and
// returns it with its public Multikey.
func newKey(t testing.TB, curve string) (atcrypto.PrivateKey, string) {
	t.Helper()
	var priv atcrypto.PrivateKey
	var err error
	switch curve {
	case "k256":
		priv, err = atcrypto.GeneratePrivateKeyK256()
	case "p256":
		priv, err = atcrypto.GeneratePrivateKeyP256()
	default:
		t.Fatalf("curve %q", curve)
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub.Multibase()
}

// unbase64 decodes the unpadded standard base64 of the crypto fixtures.
func unbase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}
