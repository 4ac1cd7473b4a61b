package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHostsSubcommand pages through a relay's listHosts, answered in the
// shape of indigo's relay (cursor: the last host id; seq -1 when unknown).
func TestHostsSubcommand(t *testing.T) {
	var limits []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/xrpc/com.atproto.sync.listHosts" {
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`{"error":"MethodNotImplemented","message":"Method Not Implemented"}`))
			return
		}
		limits = append(limits, r.URL.Query().Get("limit"))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("cursor") {
		case "":
			w.Write([]byte(`{"cursor":"2","hosts":[{"hostname":"pds1.example.com","seq":12345,"accountCount":10,"status":"active"},{"hostname":"pds2.example.com","seq":-1,"accountCount":0,"status":"idle"}]}`))
		case "2":
			w.Write([]byte(`{"hosts":[{"hostname":"localhost:2583","seq":7,"accountCount":3,"status":"banned"}]}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer ts.Close()

	res := runCLI(t, runHosts, ts.URL)
	want := "" +
		"HOSTNAME          STATUS    SEQ  ACCOUNTS\n" +
		"pds1.example.com  active  12345        10\n" +
		"pds2.example.com  idle       -1         0\n" +
		"localhost:2583    banned      7         3\n"
	if res.code != 0 || res.stdout != want || !strings.Contains(res.stderr, "3 hosts") {
		t.Fatalf("hosts: %v\n%q\nwant\n%q\n%s", res.err, res.stdout, want, res.stderr)
	}
	if len(limits) != 2 || limits[0] != "1000" {
		t.Errorf("limits asked: %v", limits)
	}
	res = runCLI(t, runHosts, "--json", "ws://"+strings.TrimPrefix(ts.URL, "http://"))
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	var h map[string]any
	if res.code != 0 || len(lines) != 3 || json.Unmarshal([]byte(lines[1]), &h) != nil || h["hostname"] != "pds2.example.com" || h["seq"] != -1.0 || h["status"] != "idle" {
		t.Errorf("hosts --json: %v\n%s", res.err, res.stdout)
	}
	// A host without listHosts (a PDS): the error, named.
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotImplemented)
		w.Write([]byte(`{"error":"MethodNotImplemented","message":"Method Not Implemented"}`))
	}))
	defer bare.Close()
	if res := runCLI(t, runHosts, bare.URL); res.code != 1 || !strings.Contains(res.err.Error(), "501 MethodNotImplemented") {
		t.Errorf("hosts of a PDS: %d %v", res.code, res.err)
	}
}
