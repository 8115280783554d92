package server

import (
	"html/template"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/version"
)

type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures prometheus.Counter
	connsRefused prometheus.Counter
	enrollments  prometheus.Counter
	// enrollRefusals counts enrollments answered 429 by the limit of
	// their client prefix (failed attempts) or of their token.
	enrollRefusals *prometheus.CounterVec
	renewals       prometheus.Counter
	reports        *prometheus.CounterVec
	syncs          *prometheus.CounterVec
	// byRoute keeps the request counter and latency histogram of each
	// route and status code once looked up (routeKey → *routeMetrics), so
	// a request does not hash its labels again.
	byRoute sync.Map
}

type routeKey struct {
	route string
	code  int
}

type routeMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// route is the request metrics of one route and status code.
func (m *metrics) route(route string, code int) *routeMetrics {
	k := routeKey{route, code}
	if rm, ok := m.byRoute.Load(k); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{count: m.requests.WithLabelValues(route, strconv.Itoa(code)), latency: m.latency.WithLabelValues(route)}
	v, _ := m.byRoute.LoadOrStore(k, rm)
	return v.(*routeMetrics)
}

// fleetCollector reports computers by status and computer×update pairs by
// state from the fleet cache (fleetcounts.go): a scrape reads no table.
type fleetCollector struct {
	s         *Server
	computers *prometheus.Desc
	states    *prometheus.Desc
	age       *prometheus.Desc
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.computers
	ch <- c.states
	ch <- c.age
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	fc := c.s.fleet.get()
	if fc.At.IsZero() {
		return
	}
	for status, n := range fc.Computers {
		ch <- prometheus.MustNewConstMetric(c.computers, prometheus.GaugeValue, float64(n), status)
	}
	for state, n := range fc.States {
		ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, float64(fc.At.Unix()))
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: newRequestDuration(),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_auth_failures_total", Help: "API requests refused for a missing, bad or under-privileged token."}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_connections_refused_total", Help: "Connections closed at accept for being over the per-client or total cap."}),
		enrollments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_enrollments_total", Help: "Agents enrolled."}),
		enrollRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_enrollments_throttled_total", Help: "Enrollment attempts answered 429, by limit: client (failed attempts of its address prefix) or token (the token's rate)."}, []string{"limit"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_agent_certificate_renewals_total", Help: "Agent certificates renewed."}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_report_batches_total", Help: "Agent report batches by outcome (applied, duplicate)."}, []string{"outcome"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_sync_runs_total", Help: "Vendor repository syncs by status."}, []string{"status"}),
	}
	fleet := &fleetCollector{s: s,
		computers: prometheus.NewDesc("bulwark_computers", "Enrolled computers by status (as of bulwark_fleet_counts_timestamp_seconds).", []string{"status"}, nil),
		states:    prometheus.NewDesc("bulwark_update_states", "Computer × update pairs by reported state (as of bulwark_fleet_counts_timestamp_seconds).", []string{"state"}, nil),
		age:       prometheus.NewDesc("bulwark_fleet_counts_timestamp_seconds", "When the fleet counts were last computed (every 15 s, off the request path).", nil, nil)}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bulwark_build_info", Help: "Always 1; the labels name this build of Bulwark."}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version.String(), runtime.Version()).Set(1)
	m.reg.MustRegister(buildInfo)
	m.reg.MustRegister(m.latency, newOpsCollector(s))
	m.reg.MustRegister(m.requests, m.authFailures, m.connsRefused, m.enrollments, m.enrollRefusals, m.renewals, m.reports, m.syncs, fleet, newCertCollector(s.st),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the kernel's sendfile path for http.ServeContent.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController and ServeContent's sendfile path reach
// the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by route pattern (never by raw path: bounded
// label values) and status code, and times them by route pattern.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		rm := s.metrics.route(route, code)
		rm.count.Inc()
		rm.latency.Observe(elapsed.Seconds())
	})
}

func (s *Server) handleMetrics() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if fc := s.fleet.get(); fc.Err != nil {
		// The last refresh of the fleet counts failed: the store is not
		// answering. (Healthz itself reads nothing.)
		http.Error(w, "store unavailable\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// Status is the server's summary, shown on / and at /api/v1/status.
type Status struct {
	Version      string          `json:"version"`
	URL          string          `json:"url"`
	CA           string          `json:"ca_fingerprint"`
	Site         RepoInfo        `json:"site"`
	Repositories []RepoInfo      `json:"repositories"`
	LastSyncs    []store.SyncRun `json:"last_syncs"`
	Computers    map[string]int  `json:"computers"`
	States       map[string]int  `json:"update_states"`
	CountsAt     time.Time       `json:"counts_at"` // when computers, states and syncs were counted
	Now          time.Time       `json:"now"`
}

func (s *Server) status(r *http.Request) (*Status, error) {
	st := &Status{Version: version.String(), URL: s.URL(), CA: s.CAFingerprint(), Repositories: s.Repositories(), Now: s.now().UTC(),
		Site: RepoInfo{Name: "site", Kind: "site", MetadataURL: s.URL() + "/site/metadata", TargetsURL: s.URL() + "/site/targets"}}
	if st.Repositories == nil {
		st.Repositories = []RepoInfo{}
	}
	// The site's first root: what enrollment pins.
	if fp, err := s.SiteRootFingerprint(); err == nil {
		st.Site.RootFingerprint = fp
	}
	st.Site.TimestampVersion, st.Site.TimestampExpires = timestampOf(s.site.Dir() + "/metadata/timestamp.json")
	fc := s.fleet.get()
	if fc.At.IsZero() {
		if fc.Err != nil {
			return nil, fc.Err
		}
		// Before the first refresh (a server that just started).
		s.refreshFleet(r.Context())
		if fc = s.fleet.get(); fc.At.IsZero() {
			return nil, errorf(http.StatusServiceUnavailable, "fleet counts not computed yet; try again")
		}
	}
	st.LastSyncs, st.Computers, st.States, st.CountsAt = fc.Syncs, fc.Computers, fc.States, fc.At
	return st, nil
}

var statusPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulwark update server</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style>
</head><body>
<h1>Bulwark update server</h1>
<p>Version {{.Version}} · {{.URL}} · CA {{.CA}}</p>
<h2>Repositories</h2>
<table><tr><th>name</th><th>kind</th><th>root</th><th>timestamp version</th><th>expires</th></tr>
<tr><td>{{.Site.Name}}</td><td>{{.Site.Kind}}</td><td><code>{{.Site.RootFingerprint}}</code></td><td>{{.Site.TimestampVersion}}</td><td>{{with .Site.TimestampExpires}}{{.Format "2006-01-02 15:04 UTC"}}{{end}}</td></tr>
{{range .Repositories}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td><code>{{.RootFingerprint}}</code></td><td>{{.TimestampVersion}}</td><td>{{with .TimestampExpires}}{{.Format "2006-01-02 15:04 UTC"}}{{end}}</td></tr>
{{end}}</table>
<h2>Sync</h2>
{{if .LastSyncs}}<table><tr><th>vendor</th><th>status</th><th>started</th><th>updates</th><th>payloads</th><th>bytes</th><th>error</th></tr>
{{range .LastSyncs}}<tr><td>{{.Vendor}}</td><td>{{.Status}}</td><td>{{.StartedAt.Format "2006-01-02 15:04:05 UTC"}}</td><td>{{.UpdatesFetched}}</td><td>{{.PayloadsFetched}}</td><td>{{.BytesFetched}}</td><td>{{.Error}}</td></tr>
{{end}}</table>{{else}}<p>No syncs yet.</p>{{end}}
<h2>Computers</h2>
<p>Counted {{.CountsAt.Format "2006-01-02 15:04:05 UTC"}}.</p>
{{if .Computers}}<table><tr><th>status</th><th>computers</th></tr>{{range $k, $v := .Computers}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{else}}<p>No computers enrolled yet.</p>{{end}}
{{if .States}}<h2>Update states</h2><table><tr><th>state</th><th>computer×update</th></tr>{{range $k, $v := .States}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{end}}
</body></html>
`))
})

func (s *Server) handleStatusPage(w http.ResponseWriter, r *http.Request) error {
	st, err := s.status(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return statusPage().Execute(w, st)
}

// routes is the HTTPS handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.repoRoutes(mux)
	mux.HandleFunc("GET /{$}", s.api(s.handleStatusPage))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.Handle("GET /metrics", s.handleMetrics())
	s.adminRoutes(mux)
	s.usersRoutes(mux)
	s.policyRoutes(mux)
	s.rolloutRoutes(mux)
	s.lockdownRoutes(mux)
	s.consoleRoutes(mux)
	s.agentRoutes(mux)
	return s.instrument(s.bodyDeadline(apiProblems(mux)))
}

// bodyDeadline gives a request body cfg.BodyTimeout to arrive, so a client
// that sends headers and then a byte now and then cannot hold a handler.
// (Headers have readHeaderTimeout.)
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// plainRoutes is the plain-HTTP handler, when configured: repositories
// only (every byte is verified by the client from signed metadata), never
// the APIs.
func (s *Server) plainRoutes() http.Handler {
	mux := http.NewServeMux()
	s.repoRoutes(mux)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	return s.instrument(mux)
}

func (s *Server) repoRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /repos/index.json", s.api(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"repositories": s.Repositories()})
		return nil
	}))
	mux.HandleFunc("GET /repos/{repo}/metadata/{file}", s.api(s.handleRepoMetadata))
	mux.HandleFunc("GET /repos/{repo}/targets/{path...}", s.api(s.handleRepoTargets))
	mux.HandleFunc("GET /site/metadata/{file}", s.api(s.handleSiteMetadata))
	mux.HandleFunc("GET /site/targets/{path...}", s.api(s.handleSiteTargets))
}
