package events

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// Metrics counts the firehose. Create it with NewMetrics and pass it in
// RingOptions and Options; its methods are safe for concurrent use, and a
// nil *Metrics counts nothing.
//
// Series:
//
//	firehose_events_total{type}             events committed, by type (commit, sync, identity, account, other)
//	firehose_frames_sent_total{source}      frames written to subscribers, from the ring or the store
//	firehose_subscribers                    websocket subscribers connected
//	firehose_subscribers_catching_up        of those, how many last read the store
//	firehose_disconnects_total{reason}      subscriber connections ended, by reason (Reason* constants)
//	firehose_subscriber_lag_events          newest seq minus a subscriber's position, after each batch
//	firehose_send_latency_seconds           commit to socket, for frames sent live from the ring
//	firehose_ring_events, firehose_ring_bytes  what the ring holds
type Metrics struct {
	events      map[string]prometheus.Counter
	other       prometheus.Counter
	fromRing    prometheus.Counter
	fromStore   prometheus.Counter
	subscribers prometheus.Gauge
	catchup     prometheus.Gauge
	disconnects *prometheus.CounterVec
	lag         prometheus.Histogram
	latency     prometheus.Histogram
	ringEvents  prometheus.Gauge
	ringBytes   prometheus.Gauge
}

// NewMetrics creates the firehose metrics and registers them with reg. It
// fails if reg already holds metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "firehose_events_total",
		Help: "Events committed to the firehose log, by type.",
	}, []string{"type"})
	frames := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "firehose_frames_sent_total",
		Help: "Frames written to subscribers, by where they were read (ring or store).",
	}, []string{"source"})
	m := &Metrics{
		events: map[string]prometheus.Counter{
			wire.TypeCommit:   events.WithLabelValues("commit"),
			wire.TypeSync:     events.WithLabelValues("sync"),
			wire.TypeIdentity: events.WithLabelValues("identity"),
			wire.TypeAccount:  events.WithLabelValues("account"),
		},
		other:     events.WithLabelValues("other"),
		fromRing:  frames.WithLabelValues("ring"),
		fromStore: frames.WithLabelValues("store"),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firehose_subscribers",
			Help: "Websocket subscribers connected.",
		}),
		catchup: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firehose_subscribers_catching_up",
			Help: "Subscribers whose last read came from the store (behind the ring).",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firehose_disconnects_total",
			Help: "Subscriber connections ended, by reason.",
		}, []string{"reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firehose_subscriber_lag_events",
			Help:    "Events between the newest seq and a subscriber's position, observed after each batch sent.",
			Buckets: []float64{0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firehose_send_latency_seconds",
			Help:    "Time from an event's commit to its frame written to a live subscriber's socket.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 5},
		}),
		ringEvents: prometheus.NewGauge(prometheus.GaugeOpts{Name: "firehose_ring_events", Help: "Events the in-memory ring holds."}),
		ringBytes:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "firehose_ring_bytes", Help: "Frame bytes the in-memory ring holds."}),
	}
	cs := []prometheus.Collector{events, frames, m.subscribers, m.catchup, m.disconnects, m.lag, m.latency, m.ringEvents, m.ringBytes}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("events: registering metrics: %w", err)
		}
	}
	for _, r := range []string{ReasonClientClosed, ReasonClientGone, ReasonIdle, ReasonWriteTimeout, ReasonWriteError, ReasonExpired, ReasonFutureCursor, ReasonShutdown, ReasonInternal} {
		m.disconnects.WithLabelValues(r) // every reason shows, at 0
	}
	return m, nil
}

func (m *Metrics) published(typ string) {
	if m == nil {
		return
	}
	if c, ok := m.events[typ]; ok {
		c.Inc()
	} else {
		m.other.Inc()
	}
}

func (m *Metrics) ringSize(events, bytes int) {
	if m == nil {
		return
	}
	m.ringEvents.Set(float64(events))
	m.ringBytes.Set(float64(bytes))
}

func (m *Metrics) connected(delta int) {
	if m != nil {
		m.subscribers.Add(float64(delta))
	}
}

func (m *Metrics) catchingUp(behind bool) {
	if m == nil {
		return
	}
	if behind {
		m.catchup.Inc()
	} else {
		m.catchup.Dec()
	}
}

func (m *Metrics) disconnected(reason string) {
	if m != nil {
		m.disconnects.WithLabelValues(reason).Inc()
	}
}

// sent counts a batch written to a subscriber.
func (m *Metrics) sent(frames []Frame, behind bool, lag int64) {
	if m == nil {
		return
	}
	if behind {
		m.fromStore.Add(float64(len(frames)))
	} else {
		m.fromRing.Add(float64(len(frames)))
		if t := frames[len(frames)-1].Time; !t.IsZero() {
			m.latency.Observe(time.Since(t).Seconds())
		}
	}
	m.lag.Observe(float64(max(lag, 0)))
}
