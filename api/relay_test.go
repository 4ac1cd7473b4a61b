package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// The relay's endpoints over a real host manager (in-memory store, a
// submitter that takes every frame at once) and quiet upstream hosts on
// loopback.

type nopSubmitter struct{ done func(string, int64) }

func (s *nopSubmitter) Submit(_ context.Context, host string, seq int64, _ []byte) error {
	s.done(host, seq)
	return nil
}

// quietHost is an upstream that answers /xrpc/_health and holds firehose
// connections open without sending anything. It returns the hostname a
// crawl request names it by.
func quietHost(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/_health":
			w.Write([]byte(`{"version":"quiet"}`))
		case "/xrpc/com.atproto.sync.subscribeRepos":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "localhost:" + port
}

func newRelayHarness(t *testing.T, crawlsPerMinute int) *harness {
	t.Helper()
	return newRelayHarnessWith(t, api.RelayOptions{CrawlRequestsPerMinute: crawlsPerMinute})
}

// newRelayHarnessWith serves the relay's endpoints with opts (Hosts and
// Auth are the harness's).
func newRelayHarnessWith(t *testing.T, opts api.RelayOptions) *harness {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	sub := &nopSubmitter{}
	mgr, err := relay.NewManager(relay.ManagerOptions{DB: db, Submitter: sub, AllowInsecure: true, CheckTimeout: 2 * time.Second, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sub.done = mgr.Done
	if err := mgr.Start(); err != nil {
		t.Fatal(err)
	}
	auth := &xrpc.Auth{AdminPassword: adminPassword}
	srv := xrpc.NewServer(xrpc.Options{})
	opts.Hosts, opts.Auth = mgr, auth
	rl := api.NewRelay(opts)
	rl.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	admin := srv.Endpoint("admin_hosts", auth.RequireAdmin(rl.AdminHandler()))
	mux.Handle("/admin/hosts", admin)
	mux.Handle("/admin/hosts/", admin)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		mgr.Close()
		db.Close()
	})
	return &harness{t: t, url: ts.URL, db: db, http: ts.Client()}
}

func TestRequestCrawlAndListHosts(t *testing.T) {
	h := newRelayHarness(t, 100)
	name := quietHost(t)
	r := h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://" + strings.ToUpper(name)})
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("requestCrawl: %d %q, want 200 with no body", r.status, r.body)
	}
	// notifyOfUpdate is an alias; asking again changes nothing.
	if r := h.procedure("com.atproto.sync.notifyOfUpdate", map[string]string{"hostname": "http://" + name}); r.status != http.StatusOK {
		t.Fatalf("notifyOfUpdate: %d %s", r.status, r.body)
	}
	list := h.query("com.atproto.sync.listHosts", nil).ok("com.atproto.sync.listHosts")
	hosts := list["hosts"].([]any)
	if len(hosts) != 1 || list["cursor"] != nil {
		t.Fatalf("listHosts %v", list)
	}
	// A quiet host: active, no seq yet, no accounts.
	want := map[string]any{"hostname": name, "accountCount": json.Number("0"), "status": "active"}
	if got := hosts[0].(map[string]any); len(got) != len(want) || got["hostname"] != want["hostname"] || got["status"] != "active" || got["accountCount"] != want["accountCount"] {
		t.Fatalf("host %v, want %v", got, want)
	}
	st := h.query("com.atproto.sync.getHostStatus", q("hostname", name)).ok("com.atproto.sync.getHostStatus")
	if st["hostname"] != name || st["status"] != "active" || st["seq"] != nil {
		t.Fatalf("getHostStatus %v", st)
	}
	h.query("com.atproto.sync.getHostStatus", q("hostname", "nowhere.example.com")).fails(http.StatusNotFound, "HostNotFound")
	h.query("com.atproto.sync.getHostStatus", nil).fails(http.StatusBadRequest, "InvalidRequest")
}

func TestRequestCrawlRefusals(t *testing.T) {
	h := newRelayHarness(t, 100)
	for _, c := range []struct {
		body   string
		status int
		name   string
	}{
		{`{}`, http.StatusBadRequest, "InvalidRequest"},
		{`{"hostname": ""}`, http.StatusBadRequest, "InvalidRequest"},
		{`not json`, http.StatusBadRequest, "InvalidRequest"},
		{`{"hostname": "ftp://pds.example.com"}`, http.StatusBadRequest, "InvalidRequest"},
		{`{"hostname": "https://pds.example.com/some/path"}`, http.StatusBadRequest, "InvalidRequest"},
		{`{"hostname": "pds"}`, http.StatusBadRequest, "InvalidRequest"},
	} {
		h.procedure("com.atproto.sync.requestCrawl", c.body).fails(c.status, c.name)
	}
	// A port nobody answers on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://localhost:" + port}).fails(http.StatusBadRequest, "HostNotFound")
	if r := h.do(http.MethodGet, "/xrpc/com.atproto.sync.requestCrawl", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET requestCrawl: %d", r.status)
	}
}

func TestRequestCrawlRateLimit(t *testing.T) {
	h := newRelayHarness(t, 3)
	name := quietHost(t)
	for range 3 {
		if r := h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://" + name}); r.status != http.StatusOK {
			t.Fatalf("requestCrawl: %d %s", r.status, r.body)
		}
	}
	r := h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://" + name})
	r.fails(http.StatusTooManyRequests, "RateLimitExceeded")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	// The admin is not rate limited.
	if r := h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://" + name}, asAdmin); r.status != http.StatusOK {
		t.Fatalf("admin requestCrawl: %d %s", r.status, r.body)
	}
}

func TestAdminHosts(t *testing.T) {
	h := newRelayHarness(t, 100)
	name := quietHost(t)
	post := func(path, body string, creds ...cred) *response {
		return h.do(http.MethodPost, path, strings.NewReader(body), http.Header{"Content-Type": {"application/json"}}, creds...)
	}
	admin := func(r *response) map[string]any {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", r.what, r.status, r.body)
		}
		return decodeJSON(t, r.body)
	}
	h.do(http.MethodGet, "/admin/hosts", nil, nil).fails(http.StatusUnauthorized, "AuthenticationRequired")
	post("/admin/hosts/"+name+"/ban", "").fails(http.StatusUnauthorized, "AuthenticationRequired")

	added := admin(post("/admin/hosts", `{"hostname":"http://`+name+`"}`, asAdmin))
	if added["hostname"] != name || added["status"] != "active" || added["noSSL"] != true || added["id"] != json.Number("1") {
		t.Fatalf("added %v", added)
	}
	banned := admin(post("/admin/hosts/"+name+"/ban", "", asAdmin))
	if banned["status"] != "banned" {
		t.Fatalf("ban: %v", banned)
	}
	h.procedure("com.atproto.sync.requestCrawl", map[string]string{"hostname": "http://" + name}).fails(http.StatusForbidden, "HostBanned")
	if st := h.query("com.atproto.sync.getHostStatus", q("hostname", name)).ok("com.atproto.sync.getHostStatus"); st["status"] != "banned" {
		t.Fatalf("getHostStatus of a banned host: %v", st)
	}
	if u := admin(post("/admin/hosts/"+name+"/unban", "", asAdmin)); u["status"] != "active" {
		t.Fatalf("unban: %v", u)
	}
	lim := admin(post("/admin/hosts/"+name+"/limits", `{"eventsPerSecond": 25, "maxAccounts": 1000}`, asAdmin))
	if lim["eventsPerSecond"] != json.Number("25") || lim["maxAccounts"] != json.Number("1000") {
		t.Fatalf("limits: %v", lim)
	}
	stored, err := h.db.Host(name)
	if err != nil || stored.Limits != (store.HostLimits{EventsPerSecond: 25, MaxAccounts: 1000}) || stored.Status != store.HostActive {
		t.Fatalf("stored %+v %v", stored, err)
	}
	post("/admin/hosts/"+name+"/limits", `{"eventsPerSecond": -1}`, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	post("/admin/hosts/nowhere.example.com/unban", "", asAdmin).fails(http.StatusNotFound, "HostNotFound")
	post("/admin/hosts/"+name+"/explode", "", asAdmin).fails(http.StatusNotFound, "NotFound")
	h.do(http.MethodDelete, "/admin/hosts/"+name, nil, nil, asAdmin).fails(http.StatusMethodNotAllowed, "InvalidRequest")
	if one := admin(h.do(http.MethodGet, "/admin/hosts/"+name, nil, nil, asAdmin)); one["hostname"] != name {
		t.Fatalf("GET one host: %v", one)
	}

	// Hosts banned ahead of any crawl request are stored; listHosts pages
	// through all of them in first-seen order.
	names := []string{name}
	for _, n := range []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com"} {
		admin(post("/admin/hosts/"+n+"/ban", "", asAdmin))
		names = append(names, n)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		params := q("limit", "2")
		if cursor != "" {
			params = append(params, "cursor", cursor)
		}
		page := h.query("com.atproto.sync.listHosts", params).ok("com.atproto.sync.listHosts")
		for _, x := range page["hosts"].([]any) {
			got = append(got, x.(map[string]any)["hostname"].(string))
		}
		c, _ := page["cursor"].(string)
		if c == "" {
			break
		}
		cursor = c
		if pages > 5 {
			t.Fatal("listHosts does not end")
		}
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("listHosts %v, want %v", got, names)
	}
	all := admin(h.do(http.MethodGet, "/admin/hosts?limit=1000", nil, nil, asAdmin))
	if n := len(all["hosts"].([]any)); n != 5 {
		t.Fatalf("admin list: %d hosts", n)
	}
	h.query("com.atproto.sync.listHosts", q("limit", "0")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listHosts", q("limit", "1001")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listHosts", q("cursor", "x")).fails(http.StatusBadRequest, "InvalidRequest")
	if empty := h.query("com.atproto.sync.listHosts", q("cursor", "99")).ok("com.atproto.sync.listHosts"); len(empty["hosts"].([]any)) != 0 {
		t.Fatalf("past the end: %v", empty)
	}
}

// TestCrawlAuth: by default requestCrawl and notifyOfUpdate are public;
// with AdminCrawlOnly (--crawl-auth=admin) both answer 401 without admin
// Basic auth (and with a wrong password), and work with it.
func TestCrawlAuth(t *testing.T) {
	name := quietHost(t)
	body := map[string]string{"hostname": "http://" + name}
	open := newRelayHarness(t, 100)
	for _, m := range []string{"com.atproto.sync.requestCrawl", "com.atproto.sync.notifyOfUpdate"} {
		if r := open.procedure(m, body); r.status != http.StatusOK {
			t.Fatalf("public %s: %d %s", m, r.status, r.body)
		}
	}
	closed := newRelayHarnessWith(t, api.RelayOptions{AdminCrawlOnly: true})
	for _, m := range []string{"com.atproto.sync.requestCrawl", "com.atproto.sync.notifyOfUpdate"} {
		closed.procedure(m, body).fails(http.StatusUnauthorized, "AuthenticationRequired")
		closed.procedure(m, body, basic("admin", "wrong")).fails(http.StatusUnauthorized, "AuthenticationRequired")
	}
	if hosts := closed.query("com.atproto.sync.listHosts", nil).ok("com.atproto.sync.listHosts")["hosts"].([]any); len(hosts) != 0 {
		t.Fatalf("refused crawl requests added hosts: %v", hosts)
	}
	for _, m := range []string{"com.atproto.sync.requestCrawl", "com.atproto.sync.notifyOfUpdate"} {
		if r := closed.procedure(m, body, asAdmin); r.status != http.StatusOK {
			t.Fatalf("admin %s: %d %s", m, r.status, r.body)
		}
	}
	if st := closed.query("com.atproto.sync.getHostStatus", q("hostname", name)).ok("com.atproto.sync.getHostStatus"); st["status"] != "active" {
		t.Fatalf("host after the admin's request: %v", st)
	}
}
