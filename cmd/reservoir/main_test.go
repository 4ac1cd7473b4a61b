package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsEverySubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help exited %d: %s", code, errb.String())
	}
	for _, name := range []string{"serve", "plc", "subscribe", "export", "blobs", "verify", "inspect", "status", "hosts"} {
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("help does not list %q:\n%s", name, out.String())
		}
	}
}

func TestUnknownSubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown subcommand exited %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "frobnicate") {
		t.Errorf("error does not name the subcommand: %q", errb.String())
	}
}
