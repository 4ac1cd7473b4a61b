package main

import (
	"io"
	"testing"
	"time"
)

// TestServeBoolFlags: the boolean flags of the contract stand alone or take
// a value; a bad value (flag or environment) is refused, not read as false.
func TestServeBoolFlags(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseServeFlags([]string{"--allow-insecure-hosts", "--lenient", "--archive=false"}, none, io.Discard)
	if err != nil || !cfg.AllowInsecureHosts || !cfg.Lenient || cfg.Archive {
		t.Fatalf("%+v %v", cfg, err)
	}
	cfg, err = parseServeFlags(nil, func(k string) string {
		return map[string]string{"RESERVOIR_ALLOW_INSECURE_HOSTS": "true", "RESERVOIR_LENIENT": "1"}[k]
	}, io.Discard)
	if err != nil || !cfg.AllowInsecureHosts || !cfg.Lenient || !cfg.Archive {
		t.Fatalf("from the environment: %+v %v", cfg, err)
	}
	// The flag wins over its environment twin.
	cfg, err = parseServeFlags([]string{"--lenient=false"}, func(k string) string {
		return map[string]string{"RESERVOIR_LENIENT": "true"}[k]
	}, io.Discard)
	if err != nil || cfg.Lenient {
		t.Fatalf("flag over environment: %+v %v", cfg, err)
	}
	for _, bad := range [][]string{{"--lenient=maybe"}, {"--allow-insecure-hosts", "yes"}} {
		if _, err := parseServeFlags(bad, none, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := parseServeFlags(nil, func(k string) string {
		return map[string]string{"RESERVOIR_ARCHIVE": "nope"}[k]
	}, io.Discard); err == nil {
		t.Error("RESERVOIR_ARCHIVE=nope accepted")
	}
}

// TestRelayTimingFromEnv: the RESERVOIR_RELAY_* variables tests use to
// shorten the relay's timing.
func TestRelayTimingFromEnv(t *testing.T) {
	env := map[string]string{
		"RESERVOIR_RELAY_MIN_BACKOFF": "50ms", "RESERVOIR_RELAY_MAX_BACKOFF": "1s", "RESERVOIR_RELAY_OFFLINE_AFTER": "3",
		"RESERVOIR_RELAY_OFFLINE_RETRY": "2s", "RESERVOIR_RELAY_RECOUNT_INTERVAL": "10s", "RESERVOIR_RELAY_FLUSH_INTERVAL": "100ms",
	}
	rt, err := relayTimingFromEnv(func(k string) string { return env[k] })
	want := relayTiming{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, OfflineRetry: 2 * time.Second,
		RecountInterval: 10 * time.Second, FlushInterval: 100 * time.Millisecond, OfflineAfter: 3}
	if err != nil || rt != want {
		t.Fatalf("%+v %v, want %+v", rt, err, want)
	}
	if rt, err := relayTimingFromEnv(func(string) string { return "" }); err != nil || rt != (relayTiming{}) {
		t.Fatalf("no variables: %+v %v", rt, err)
	}
	for k, v := range map[string]string{"RESERVOIR_RELAY_MIN_BACKOFF": "soon", "RESERVOIR_RELAY_MAX_BACKOFF": "-1s", "RESERVOIR_RELAY_OFFLINE_AFTER": "0"} {
		if _, err := relayTimingFromEnv(func(name string) string {
			if name == k {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}
