package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusSubcommand(t *testing.T) {
	r := startReservoir(t)
	alice := r.createAccount("alice.test")
	r.putRecord(alice, "app.bsky.feed.post", "3l00000000001", textPost("hi"))
	commitCID, rev := r.latestCommit(alice.did)

	res := runCLI(t, runStatus, "--host", r.url, alice.did)
	want := "host:    " + r.url + "\ndid:     " + alice.did + "\nactive:  true\nstatus:  -\nrev:     " + rev + "\ncommit:  " + commitCID + " (rev " + rev + ")\n"
	if res.code != 0 || res.stdout != want {
		t.Fatalf("status: %v\n%s\nwant\n%s", res.err, res.stdout, want)
	}
	res = runCLI(t, runStatus, "--plc-url", r.plc, "--allow-insecure-hosts", "--json", alice.did)
	var out map[string]any
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &out) != nil || out["active"] != true || out["rev"] != rev ||
		out["latestCommit"].(map[string]any)["cid"] != commitCID || out["host"] != r.url {
		t.Fatalf("status --json without --host: %v %s", res.err, res.stdout)
	}

	r.takedown(alice.did)
	res = runCLI(t, runStatus, "--host", "ws://"+strings.TrimPrefix(r.url, "http://"), alice.did)
	if res.code != 0 || !strings.Contains(res.stdout, "active:  false\nstatus:  takendown\n") || !strings.Contains(res.stdout, "commit:  not served (RepoTakendown)") {
		t.Errorf("status after takedown: %v\n%s", res.err, res.stdout)
	}
	res = runCLI(t, runStatus, "--host", r.url, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	if res.code != 1 || !strings.Contains(res.err.Error(), "404 RepoNotFound") {
		t.Errorf("unknown repository: %d %v", res.code, res.err)
	}
}
