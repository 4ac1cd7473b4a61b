package xrpc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the metric families of reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestMetricsCountRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Options{Metrics: m})
	s.Query("com.atproto.sync.getRepo", okJSON)
	s.Query("com.atproto.sync.getBlob", func(http.ResponseWriter, *http.Request) error {
		return BlobNotFound("bafkrei")
	})
	s.Subscription("com.atproto.sync.subscribeRepos", okJSON)

	for range 3 {
		serve(s, "GET", "/xrpc/com.atproto.sync.getRepo", nil, nil)
	}
	serve(s, "POST", "/xrpc/com.atproto.sync.getRepo", nil, nil)
	serve(s, "GET", "/xrpc/com.atproto.sync.getBlob", nil, nil)
	serve(s, "GET", "/xrpc/com.example.random1", nil, nil)
	serve(s, "GET", "/xrpc/com.example.random2", nil, nil)
	serve(s, "GET", "/xrpc/_health", nil, nil)
	serve(s, "GET", "/xrpc/com.atproto.sync.subscribeRepos", nil, nil)
	// A client that went away before the answer.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := NewServer(Options{Metrics: m})
	s2.Query("com.atproto.sync.listRepos", func(w http.ResponseWriter, r *http.Request) error { return r.Context().Err() })
	s2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/xrpc/com.atproto.sync.listRepos", nil).WithContext(ctx))

	fams := gather(t, reg)
	want := map[[2]string]float64{
		{"com.atproto.sync.getRepo", "200"}:        3,
		{"com.atproto.sync.getRepo", "405"}:        1,
		{"com.atproto.sync.getBlob", "404"}:        1,
		{"unknown", "501"}:                         2, // bounded label for unregistered NSIDs
		{"_health", "200"}:                         1,
		{"com.atproto.sync.subscribeRepos", "200"}: 1,
		{"com.atproto.sync.listRepos", "499"}:      1,
	}
	got := map[[2]string]float64{}
	for _, metric := range fams["xrpc_requests_total"].GetMetric() {
		l := labelsOf(metric)
		got[[2]string{l["nsid"], l["code"]}] = metric.GetCounter().GetValue()
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests%v = %v, want %v", k, got[k], v)
		}
	}

	durations := map[string]uint64{}
	for _, metric := range fams["xrpc_request_duration_seconds"].GetMetric() {
		durations[labelsOf(metric)["nsid"]] = metric.GetHistogram().GetSampleCount()
	}
	if durations["com.atproto.sync.getRepo"] != 4 || durations["unknown"] != 2 {
		t.Errorf("duration samples %v", durations)
	}
	if _, ok := durations["com.atproto.sync.subscribeRepos"]; ok {
		t.Error("a subscription was timed")
	}
}

func TestMetricsAbortedCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	s := NewServer(Options{Metrics: m})
	s.Query("com.example.abort", func(http.ResponseWriter, *http.Request) error { return http.ErrAbortHandler })
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		serve(s, "GET", "/xrpc/com.example.abort", nil, nil)
	}()
	for _, metric := range gather(t, reg)["xrpc_requests_total"].GetMetric() {
		if l := labelsOf(metric); l["nsid"] != "com.example.abort" || l["code"] != "aborted" {
			t.Errorf("series %v", l)
		}
	}
}

func TestNewMetricsRegistrationConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registered the same metrics twice")
	}
	// A conflict on the second metric leaves nothing half-registered.
	reg = prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "xrpc_request_duration_seconds", Help: "taken"}))
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("no conflict")
	}
	if _, ok := gather(t, reg)["xrpc_requests_total"]; ok {
		t.Error("xrpc_requests_total left registered after a failure")
	}
	// The name is free again (the registry insists on the same help and
	// labels for a name it has seen).
	again := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xrpc_requests_total",
		Help: "XRPC requests by method NSID and HTTP status code.",
	}, []string{"nsid", "code"})
	if err := reg.Register(again); err != nil {
		t.Errorf("xrpc_requests_total still registered: %v", err)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.observe("x", KindQuery, 200, 0) // no panic
}
