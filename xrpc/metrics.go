package xrpc

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts XRPC requests. Create it with NewMetrics and pass it in
// Options; its methods are safe for concurrent use, and a nil *Metrics
// counts nothing.
//
// Series (nsid is the registered NSID, "_health", an Endpoint's label, or
// "unknown" for unregistered paths, so that the label set stays bounded):
//
//	xrpc_requests_total{nsid, code}            every request, by response status
//	xrpc_request_duration_seconds{nsid}        time to serve queries and procedures
//
// code is the HTTP status sent; "499" when the client went away before an
// answer, "aborted" when the connection was cut without one. Subscriptions
// are counted but not timed: their duration is the connection's life.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the XRPC metrics and registers them with reg. It fails
// if reg already holds metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xrpc_requests_total",
			Help: "XRPC requests by method NSID and HTTP status code.",
		}, []string{"nsid", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xrpc_request_duration_seconds",
			Help:    "Time to serve XRPC queries and procedures, by method NSID.",
			Buckets: prometheus.DefBuckets,
		}, []string{"nsid"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("xrpc: registering metrics: %w", err)
	}
	if err := reg.Register(m.duration); err != nil {
		reg.Unregister(m.requests)
		return nil, fmt.Errorf("xrpc: registering metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) observe(nsid string, kind Kind, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(nsid, statusLabel(code)).Inc()
	if kind != KindSubscription {
		m.duration.WithLabelValues(nsid).Observe(d.Seconds())
	}
}
