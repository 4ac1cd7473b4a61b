package relay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/repo"
)

// Outcomes of an upstream event (the outcome label of
// relay_ingest_events_total).
const (
	outcomeApplied        = "applied"         // a #commit stored and re-broadcast
	outcomeForwarded      = "forwarded"       // an #identity or #account stored and re-broadcast
	outcomeResync         = "resync"          // the event asked for a resync (a #sync of a newer state, a commit we cannot apply forward)
	outcomeInvalid        = "invalid"         // verification failed: the account is desynchronized
	outcomeStale          = "stale"           // a commit or sync at or before the stored rev (a replay)
	outcomeInactive       = "inactive"        // the account is not active here
	outcomeDesynchronized = "desynchronized"  // the account awaits a resync
	outcomeDroppedHeld    = "dropped_held"    // its account awaits a resync and too many events already wait
	outcomeWrongHost      = "wrong_host"      // the DID document names another PDS
	outcomeIdentity       = "identity_error"  // the DID does not resolve to a usable identity
	outcomeHostedHere     = "hosted_here"     // an upstream event about an account this service hosts
	outcomeUnknownDeleted = "unknown_deleted" // a deletion of an account never seen
	outcomeLegacy         = "legacy"          // a legacy event that changes nothing (a #migrate of an unknown or unmoved account)
	outcomeSkipped        = "skipped"         // #info, error frames, unknown types
	outcomeMalformed      = "malformed"       // the frame does not decode
	outcomeError          = "error"           // the store or something else of ours failed
)

// ingestMetrics are the ingest's prometheus series:
//
//	relay_ingest_events_total{type, outcome}   upstream events by type and outcome
//	relay_ingest_verify_failures_total{check}  verification failures by the check that failed
//	relay_ingest_resyncs_total{result}         resyncs by result
//	relay_ingest_resync_retries_total          failed resyncs retried on their timer
//	relay_ingest_queue_events, _queue_bytes    what the queues hold
//	relay_ingest_event_seconds                 processing time of one event
type ingestMetrics struct {
	events        *prometheus.CounterVec
	failures      *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	resyncRetries prometheus.Counter
	qEvents       prometheus.Gauge
	qBytes        prometheus.Gauge
	latency       prometheus.Histogram
}

func newIngestMetrics(reg prometheus.Registerer) (*ingestMetrics, error) {
	m := &ingestMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_ingest_events_total",
			Help: "Upstream events by type and outcome.",
		}, []string{"type", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_ingest_verify_failures_total",
			Help: "Upstream commits and syncs that failed verification, by the check that failed.",
		}, []string{"check"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_ingest_resyncs_total",
			Help: "Repository resyncs by result.",
		}, []string{"result"}),
		resyncRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_ingest_resync_retries_total",
			Help: "Failed resyncs asked for again when their backoff ended.",
		}),
		qEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_ingest_queue_events",
			Help: "Upstream events submitted and not yet processed.",
		}),
		qBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_ingest_queue_bytes",
			Help: "Frame bytes of the events queued.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_ingest_event_seconds",
			Help:    "Time to process one upstream event (verify, apply, commit).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.failures, m.resyncs, m.resyncRetries, m.qEvents, m.qBytes, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *ingestMetrics) event(typ, outcome string) { m.events.WithLabelValues(typ, outcome).Inc() }

func (m *ingestMetrics) queue(events int, bytes int64) {
	m.qEvents.Set(float64(events))
	m.qBytes.Set(float64(bytes))
}

func (m *ingestMetrics) failure(err error) { m.failures.WithLabelValues(checkLabel(err)).Inc() }

func (m *ingestMetrics) resync(result string) { m.resyncs.WithLabelValues(result).Inc() }

// checkLabels name the checks of repo's verification as short labels.
var checkLabels = []struct {
	check error
	label string
}{
	{repo.ErrSignature, "signature"},
	{repo.ErrRevOrder, "rev_order"},
	{repo.ErrFutureRev, "future_rev"},
	{repo.ErrInversion, "inversion"},
	{repo.ErrPrevDataMismatch, "prevdata_mismatch"},
	{repo.ErrChainBreak, "chain_break"},
	{repo.ErrPrevDataMissing, "prevdata_missing"},
	{repo.ErrMissingBlock, "missing_block"},
	{repo.ErrCIDMismatch, "cid_mismatch"},
	{repo.ErrTooManyOps, "too_many_ops"},
	{repo.ErrTooLarge, "too_large"},
	{repo.ErrRepoMismatch, "repo_mismatch"},
	{repo.ErrMalformed, "malformed"},
	{errApply, "apply"},
	{errIdentity, "identity"},
}

// checkLabel is the label of the check err failed.
func checkLabel(err error) string {
	check := repo.FailedCheck(err)
	if check == nil {
		check = err
	}
	for _, c := range checkLabels {
		if errors.Is(check, c.check) {
			return c.label
		}
	}
	return "other"
}
