package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// certCollector reports when active agents' certificates expire, read from
// the store when Prometheus scrapes: how many expire within a week and
// within 30 days (agents that stopped renewing), and the earliest expiry.
type certCollector struct {
	st       AgentStore
	now      func() time.Time
	expiring *prometheus.Desc
	earliest *prometheus.Desc
}

func newCertCollector(st AgentStore) *certCollector {
	return &certCollector{st: st, now: time.Now,
		expiring: prometheus.NewDesc("bulwark_agent_certificates_expiring",
			"Active agents whose client certificate expires within the window (agents renew at two thirds of the lifetime).", []string{"within"}, nil),
		earliest: prometheus.NewDesc("bulwark_agent_certificate_earliest_expiry_timestamp_seconds",
			"When the first active agent's client certificate expires (unix seconds).", nil, nil)}
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiring
	ch <- c.earliest
}

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.now()
	windows := []struct {
		label string
		d     time.Duration
	}{{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}
	before := make([]time.Time, len(windows))
	for i, w := range windows {
		before[i] = now.Add(w.d)
	}
	counts, earliest, err := c.st.CertExpiry(ctx, before)
	if err != nil {
		return
	}
	for i, w := range windows {
		ch <- prometheus.MustNewConstMetric(c.expiring, prometheus.GaugeValue, float64(counts[i]), w.label)
	}
	if !earliest.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.earliest, prometheus.GaugeValue, float64(earliest.Unix()))
	}
}
