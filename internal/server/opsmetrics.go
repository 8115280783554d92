package server

import (
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// requestBuckets are the latency histogram's buckets in seconds: from a
// cached 304 check-in (well under a millisecond) to a slow report or sync
// request.
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newRequestDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bulwark_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request (headers read to handler done), by route pattern (never the raw path).",
		Buckets: requestBuckets,
	}, []string{"route"})
}

// opsCollector reports, at each scrape, the last successful sync of each
// vendor (from the fleet cache, so a scrape reads no table) and the time
// left before the top-level TUF metadata of each repository the server
// keeps expires (read from its metadata directory: a few small files).
type opsCollector struct {
	s        *Server
	lastSync *prometheus.Desc
	expiry   *prometheus.Desc
	unread   *prometheus.Desc
}

func newOpsCollector(s *Server) *opsCollector {
	return &opsCollector{s: s,
		lastSync: prometheus.NewDesc("bulwark_sync_last_success_timestamp_seconds",
			"When the last successful sync of a vendor repository finished (Unix seconds).", []string{"vendor"}, nil),
		expiry: prometheus.NewDesc("bulwark_tuf_metadata_expiry_seconds",
			"Seconds until a repository's current TUF metadata expires (negative: expired), by repository and role (root, targets, snapshot, timestamp).",
			[]string{"repository", "role"}, nil),
		unread: prometheus.NewDesc("bulwark_tuf_metadata_unreadable",
			"1 when a repository's current metadata could not be read for bulwark_tuf_metadata_expiry_seconds (the log says why).", []string{"repository"}, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSync
	ch <- c.expiry
	ch <- c.unread
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	for vendor, at := range c.s.fleet.get().LastOK {
		ch <- prometheus.MustNewConstMetric(c.lastSync, prometheus.GaugeValue, float64(at.UnixMilli())/1000, vendor)
	}
	now := c.s.now()
	repos := map[string]string{"site": c.s.site.Dir()}
	for _, r := range c.s.sortedRepos() {
		repos[r.name] = r.dir
	}
	for name, dir := range repos {
		if _, err := os.Stat(filepath.Join(dir, tuf.MetadataDir, "timestamp.json")); err != nil {
			continue // a mirror not synced yet has nothing to expire
		}
		exp, err := tuf.Expiries(dir)
		for role, at := range exp {
			ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, at.Sub(now).Seconds(), name, role)
		}
		bad := 0.0
		if err != nil {
			bad = 1
			c.s.log.Warn("metrics: repository metadata", "repository", name, "err", err)
		}
		ch <- prometheus.MustNewConstMetric(c.unread, prometheus.GaugeValue, bad, name)
	}
}

// lastSuccesses adds to prev the finish time of the newest successful run of
// each vendor among runs; a vendor keeps its earlier time when none of runs
// (the newest 200) succeeded.
func lastSuccesses(prev map[string]time.Time, runs []store.SyncRun) map[string]time.Time {
	out := make(map[string]time.Time, len(prev))
	for v, t := range prev {
		out[v] = t
	}
	for _, r := range runs {
		if r.Status == store.SyncOK && r.FinishedAt != nil && r.FinishedAt.After(out[r.Vendor]) {
			out[r.Vendor] = *r.FinishedAt
		}
	}
	return out
}
