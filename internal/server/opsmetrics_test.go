package server

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// scrape reads /metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	b := ts.admin("GET", "/metrics", nil, http.StatusOK)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, b)
	}
	return fams
}

// series returns the metrics of a family whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// TestOperationsMetrics scrapes a site server that synced a vendor: request
// latency by route pattern (a raw URL never becomes a label), the last
// successful sync, and the TUF metadata expiry of each repository it keeps,
// checked against tuf.Verify's reading of the same timestamp.
func TestOperationsMetrics(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "a"})
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	site := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), nil))
	before := time.Now().Add(-time.Second)
	mustSync(t, site)
	site.refreshFleet(context.Background())

	site.do(site.client, "GET", "/healthz", "", nil)
	site.do(site.client, "GET", "/repos/example/metadata/timestamp.json", "", nil)
	if code, _, _ := site.do(site.client, "GET", "/repos/example/metadata/no-such-7f3a9.json", "", nil); code != http.StatusNotFound {
		t.Fatalf("missing metadata: %d, want 404", code)
	}
	fams := scrape(t, site)

	t.Run("latency by route pattern", func(t *testing.T) {
		f := fams["bulwark_http_request_duration_seconds"]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("no histogram bulwark_http_request_duration_seconds: %v", f)
		}
		ms := series(fams, "bulwark_http_request_duration_seconds", map[string]string{"route": "GET /repos/{repo}/metadata/{file}"})
		if len(ms) != 1 || ms[0].Histogram.GetSampleCount() < 2 {
			t.Fatalf("metadata route: %v, want one series with at least 2 requests", ms)
		}
		h := ms[0].Histogram
		if n := len(h.Bucket); n != len(requestBuckets)+1 { // and +Inf
			t.Errorf("%d buckets, want %d", n, len(requestBuckets)+1)
		}
		if h.GetSampleSum() <= 0 || h.GetSampleSum() > 60 {
			t.Errorf("sum of durations %v s", h.GetSampleSum())
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "7f3a9") || strings.Contains(l.GetValue(), "timestamp.json") {
					t.Errorf("a raw URL became a label: %s=%q", l.GetName(), l.GetValue())
				}
			}
		}
		if len(series(fams, "bulwark_http_request_duration_seconds", map[string]string{"route": "GET /healthz"})) != 1 {
			t.Error("no series for GET /healthz")
		}
	})

	t.Run("last successful sync", func(t *testing.T) {
		ms := series(fams, "bulwark_sync_last_success_timestamp_seconds", map[string]string{"vendor": "example"})
		if len(ms) != 1 {
			t.Fatalf("series: %v", ms)
		}
		at := time.UnixMilli(int64(ms[0].Gauge.GetValue() * 1000))
		if at.Before(before) || at.After(time.Now()) {
			t.Errorf("last success %v, want between %v and now", at, before)
		}
	})

	t.Run("TUF metadata expiry", func(t *testing.T) {
		for repo, dir := range map[string]string{"site": site.site.Dir(), "example": filepath.Join(site.cfg.DataDir, mirrorsDir, "example")} {
			got := map[string]float64{}
			for _, m := range series(fams, "bulwark_tuf_metadata_expiry_seconds", map[string]string{"repository": repo}) {
				for _, l := range m.Label {
					if l.GetName() == "role" {
						got[l.GetValue()] = m.Gauge.GetValue()
					}
				}
			}
			for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
				if got[role] <= 0 {
					t.Errorf("%s %s: %v seconds left, want > 0 (all: %v)", repo, role, got[role], got)
				}
			}
			if got["root"] <= got["timestamp"] {
				t.Errorf("%s: root expires in %v s, before the timestamp (%v s)", repo, got["root"], got["timestamp"])
			}
			// The timestamp's expiry as tuf.Verify reads it.
			rep, err := tuf.Verify(context.Background(), dir, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if left := time.Until(rep.TimestampExpires).Seconds(); got["timestamp"] < left-60 || got["timestamp"] > left+1 {
				t.Errorf("%s timestamp: %v s left, tuf.Verify says %v s", repo, got["timestamp"], left)
			}
			if u := series(fams, "bulwark_tuf_metadata_unreadable", map[string]string{"repository": repo}); len(u) != 1 || u[0].Gauge.GetValue() != 0 {
				t.Errorf("%s unreadable: %v", repo, u)
			}
		}
	})
}
