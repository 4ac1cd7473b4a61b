package relay

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/store"
)

// metrics of the host manager. Labels are bounded sets (no hostnames).
type metrics struct {
	frames      prometheus.Counter
	submitted   prometheus.Counter
	skipped     *prometheus.CounterVec
	connects    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	throttled   prometheus.Counter
	crawls      *prometheus.CounterVec
	backfills   *prometheus.CounterVec
	hosts       *hostsCollector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_upstream_frames_total", Help: "Frames read from upstream hosts.",
		}),
		submitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_upstream_submitted_total", Help: "Upstream frames handed to the ingest.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_upstream_skipped_total", Help: "Upstream frames not handed to the ingest, by reason.",
		}, []string{"reason"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_upstream_connects_total", Help: "Connection attempts to upstream hosts, by result.",
		}, []string{"result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_upstream_disconnects_total", Help: "Upstream connections that ended, by reason.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_upstream_throttled_seconds_total", Help: "Time upstream reads waited for the per-host rate limit.",
		}),
		crawls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_crawl_requests_total", Help: "Crawl requests (public and admin), by result.",
		}, []string{"result"}),
		backfills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_backfill_repos_total", Help: "Repositories of newly crawled hosts fetched whole, by result (ok, failed, inactive: skipped).",
		}, []string{"result"}),
		hosts: &hostsCollector{desc: prometheus.NewDesc("relay_hosts", "Upstream hosts by status.", []string{"status"}, nil)},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.frames, m.submitted, m.skipped, m.connects, m.disconnects, m.throttled, m.crawls, m.backfills, m.hosts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("relay: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) watch(mgr *Manager) { m.hosts.mgr = mgr }

// hostsCollector counts the hosts by status when scraped.
type hostsCollector struct {
	desc *prometheus.Desc
	mgr  *Manager
}

func (c *hostsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *hostsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.mgr == nil {
		return
	}
	counts := map[store.HostStatus]int{}
	for _, hs := range c.mgr.snapshotHosts() {
		counts[hs.info().Status]++
	}
	for _, s := range []store.HostStatus{store.HostActive, store.HostIdle, store.HostOffline, store.HostThrottled, store.HostBanned} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
