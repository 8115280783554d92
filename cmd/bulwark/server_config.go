//go:build !agentonly

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/duration"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// maxConfigSize caps the server's YAML config file.
const maxConfigSize = 1 << 20

// serverFileConfig is the YAML config file of `bulwark server`; the same
// keys are set by BULWARK_* variables and flags.
type serverFileConfig struct {
	DataDir   string           `yaml:"data_dir"`
	Database  string           `yaml:"database"`
	Retention *store.Retention `yaml:"retention"`
	Listen    string           `yaml:"listen"`
	HTTP      string           `yaml:"http"`
	Hosts     []string         `yaml:"hosts"`
	PublicURL string           `yaml:"public_url"`
	SiteName  string           `yaml:"site_name"`
	// AgentCertLifetime is how long agent certificates are valid (365d by
	// default; agents renew at two thirds), e.g. 90d.
	AgentCertLifetime string                `yaml:"agent_cert_lifetime"`
	Vendors           []server.HostedVendor `yaml:"vendors"`
	Upstream          *upstreamFileConfig   `yaml:"upstream"`
	Log               struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`

	// SiteRootKeyOut is where the first start writes the site root key.
	SiteRootKeyOut string `yaml:"site_root_key_out"`

	// EnrollLimits: failed enrollments per address prefix, enrollments
	// per token (server.EnrollLimits); zero fields take the defaults.
	EnrollLimits server.EnrollLimits `yaml:"enroll_limits"`

	// ContentStore is "" (targets served from the repositories'
	// directories) or s3://bucket/prefix, with S3 saying where and how
	// (server_content.go).
	ContentStore string       `yaml:"content_store"`
	S3           s3FileConfig `yaml:"s3"`
}

type upstreamFileConfig struct {
	URL             string                  `yaml:"url"`
	CAFingerprint   string                  `yaml:"ca_fingerprint"`
	Vendors         []server.UpstreamVendor `yaml:"vendors"`
	Interval        time.Duration           `yaml:"interval"`
	Jitter          time.Duration           `yaml:"jitter"`
	MetadataOnly    bool                    `yaml:"metadata_only"`
	Mode            string                  `yaml:"mode"`
	Token           string                  `yaml:"token"`
	Products        []string                `yaml:"products"`
	Classifications []string                `yaml:"classifications"`
	Severities      []string                `yaml:"severities"`
}

// loadServerConfig reads the config file at path and then the *.yaml files
// of its drop-in directory (path.d) in lexical order, each overriding the
// keys it sets, over the defaults.
func loadServerConfig(path string) (*serverFileConfig, error) {
	c := &serverFileConfig{DataDir: "bulwark-data", Listen: ":8443"}
	c.Log.Level, c.Log.Format = "info", "text"
	if path == "" {
		return c, nil
	}
	files := []string{path}
	drop, err := filepath.Glob(filepath.Join(path+".d", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sort.Strings(drop)
	files = append(files, drop...)
	for _, p := range files {
		if err := c.readFile(p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readFile merges one config file into c.
func (c *serverFileConfig) readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(b) > maxConfigSize {
		return fmt.Errorf("config %s: over the %d byte limit", path, maxConfigSize)
	}
	if _, err := parseServerConfig(path, b, c); err != nil {
		return err
	}
	// A file holding a secret (the upstream token, a database password)
	// must be private, like key and token files (F17).
	own, err := parseServerConfig(path, b, &serverFileConfig{})
	if err != nil {
		return err
	}
	if own.holdsSecret() {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := capread.CheckPrivate(path, fi); err != nil {
			return fmt.Errorf("config holds a secret: %w", err)
		}
	}
	return nil
}

// holdsSecret reports whether the file config carries a token or password.
func (c *serverFileConfig) holdsSecret() bool {
	if c.Upstream != nil && c.Upstream.Token != "" {
		return true
	}
	if u, err := url.Parse(c.Database); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return false
}

func parseServerConfig(name string, b []byte, c *serverFileConfig) (*serverFileConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// serverFlags are the command-line settings; only flags that were set
// override the file and environment.
type serverFlags struct {
	dataDir, database, listen, http, publicURL string
	siteName, siteRootKeyOut                   string
	retainReports, retainSyncs                 time.Duration
	retainEvents                               int
	enrollLimits                               server.EnrollLimits
	hosts, vendors                             []string
	upstream, upstreamCA                       string
	upstreamVendors                            []string
	interval, jitter                           time.Duration
	metadataOnly                               bool
	mode, tokenFile                            string
	products, classifications, severities      []string
	logLevel, logFormat                        string
	agentCertLifetime                          string
	content                                    contentFlags
}

func (sf *serverFlags) register(f *pflag.FlagSet) {
	f.StringVar(&sf.dataDir, "data-dir", "bulwark-data", "the server's data directory (SQLite, site repository, TLS material), created 0700")
	f.StringVar(&sf.database, "database", "", "PostgreSQL URL postgres://user@host:port/name (default: SQLite in the data directory); prefer BULWARK_DATABASE or the config file when it holds a password")
	sf.content.register(f)
	f.StringVar(&sf.listen, "listen", ":8443", "HTTPS listen address")
	f.DurationVar(&sf.retainReports, "retain-reports", store.DefaultRetention.Reports, "how long delivered report batch ids are remembered; 0 keeps them forever")
	f.IntVar(&sf.retainEvents, "retain-events", store.DefaultRetention.Events, "reported state changes kept per computer (its timeline); 0 keeps them all")
	f.DurationVar(&sf.retainSyncs, "retain-syncs", store.DefaultRetention.Syncs, "how long finished sync runs stay in the sync history; 0 keeps them forever")
	d := server.DefaultEnrollLimits
	f.Float64Var(&sf.enrollLimits.TokenRate, "enroll-token-rate", d.TokenRate, "enrollments per second one enrollment token may make, after --enroll-token-burst (machines behind one NAT address enroll at this rate)")
	f.IntVar(&sf.enrollLimits.TokenBurst, "enroll-token-burst", d.TokenBurst, "enrollments one enrollment token may make at once")
	f.Float64Var(&sf.enrollLimits.FailRate, "enroll-fail-rate", d.FailRate, "failed enrollment attempts per second allowed from one address (an IPv4 address, an IPv6 /64) after --enroll-fail-burst; over it every attempt is answered 429")
	f.IntVar(&sf.enrollLimits.FailBurst, "enroll-fail-burst", d.FailBurst, "failed enrollment attempts allowed from one address at once")
	f.StringVar(&sf.http, "http", "", "also serve repositories (only) over plain HTTP on this address; off unless set")
	f.StringSliceVar(&sf.hosts, "host", nil, "extra DNS name or IP address for the server certificate (repeatable)")
	f.StringVar(&sf.publicURL, "public-url", "", "URL agents and admins reach this server at (default https://<hostname>:<port>)")
	f.StringVar(&sf.siteName, "site-name", "site", "name of the site repository, made on first start")
	f.StringVar(&sf.siteRootKeyOut, "site-root-key-out", "", "first start: write the site root key (the offline key that signs which vendors agents trust) to this new file, never into the data directory")
	f.StringArrayVar(&sf.vendors, "vendor", nil, "serve a vendor repository made with 'bulwark repo init': NAME=DIR (repeatable)")
	f.StringVar(&sf.upstream, "upstream", "", "sync vendor repositories from this server: https://host:port")
	f.StringVar(&sf.upstreamCA, "upstream-ca", "", "the upstream's site CA fingerprint, sha256:<64 hex>, as it printed")
	f.StringArrayVar(&sf.upstreamVendors, "upstream-vendor", nil, "vendor repository to sync: NAME=sha256:<fingerprint of its metadata/1.root.json> (repeatable)")
	f.DurationVar(&sf.interval, "sync-interval", time.Hour, "time between scheduled syncs")
	f.DurationVar(&sf.jitter, "sync-jitter", 0, "random extra delay added to each interval (default interval/10)")
	f.BoolVar(&sf.metadataOnly, "metadata-only", false, "sync metadata only; agents fetch payloads from the upstream")
	f.StringVar(&sf.mode, "upstream-mode", "autonomous", "autonomous (own groups and approvals) or replica (the upstream's, read with --upstream-token-file)")
	f.StringVar(&sf.tokenFile, "upstream-token-file", "", "replica mode: file holding an API token of the upstream (role viewer is enough)")
	f.StringSliceVar(&sf.products, "product", nil, "sync only these products (repeatable)")
	f.StringSliceVar(&sf.classifications, "classification", nil, "sync only these classifications (repeatable)")
	f.StringSliceVar(&sf.severities, "severity", nil, "sync only these severities (repeatable)")
	f.StringVar(&sf.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&sf.agentCertLifetime, "agent-cert-lifetime", "365d", "how long agent certificates are valid; agents renew at two thirds (e.g. 90d)")
	f.StringVar(&sf.logFormat, "log-format", "text", "log format: text or json")
}

func (c *serverFileConfig) retention() *store.Retention {
	if c.Retention == nil {
		r := store.DefaultRetention
		c.Retention = &r
	}
	return c.Retention
}

func (c *serverFileConfig) up() *upstreamFileConfig {
	if c.Upstream == nil {
		c.Upstream = &upstreamFileConfig{}
	}
	return c.Upstream
}

// applyEnv applies BULWARK_* variables.
func (c *serverFileConfig) applyEnv(lookup func(string) (string, bool)) error {
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		if v, ok := lookup(name); ok {
			*dst = splitList(v)
		}
	}
	str("BULWARK_DATA_DIR", &c.DataDir)
	str("BULWARK_DATABASE", &c.Database)
	str("BULWARK_CONTENT_STORE", &c.ContentStore)
	str("BULWARK_S3_ENDPOINT", &c.S3.Endpoint)
	str("BULWARK_S3_REGION", &c.S3.Region)
	str("BULWARK_S3_CREDENTIALS_FILE", &c.S3.CredentialsFile)
	str("BULWARK_S3_CA_FILE", &c.S3.CAFile)
	str("BULWARK_LISTEN", &c.Listen)
	str("BULWARK_HTTP", &c.HTTP)
	list("BULWARK_HOST", &c.Hosts)
	str("BULWARK_PUBLIC_URL", &c.PublicURL)
	str("BULWARK_SITE_NAME", &c.SiteName)
	str("BULWARK_AGENT_CERT_LIFETIME", &c.AgentCertLifetime)
	str("BULWARK_SITE_ROOT_KEY_OUT", &c.SiteRootKeyOut)
	str("BULWARK_LOG_LEVEL", &c.Log.Level)
	str("BULWARK_LOG_FORMAT", &c.Log.Format)
	if v, ok := lookup("BULWARK_VENDOR"); ok {
		vs, err := parseVendors(splitList(v))
		if err != nil {
			return fmt.Errorf("BULWARK_VENDOR: %w", err)
		}
		c.Vendors = vs
	}
	if v, ok := lookup("BULWARK_UPSTREAM"); ok {
		c.up().URL = v
	}
	if v, ok := lookup("BULWARK_UPSTREAM_CA"); ok {
		c.up().CAFingerprint = v
	}
	if v, ok := lookup("BULWARK_UPSTREAM_VENDOR"); ok {
		uv, err := parseUpstreamVendors(splitList(v))
		if err != nil {
			return fmt.Errorf("BULWARK_UPSTREAM_VENDOR: %w", err)
		}
		c.up().Vendors = uv
	}
	for _, d := range []struct {
		name string
		dst  func() *time.Duration
	}{
		{"BULWARK_RETAIN_REPORTS", func() *time.Duration { return &c.retention().Reports }},
		{"BULWARK_RETAIN_SYNCS", func() *time.Duration { return &c.retention().Syncs }},
		{"BULWARK_SYNC_INTERVAL", func() *time.Duration { return &c.up().Interval }},
		{"BULWARK_SYNC_JITTER", func() *time.Duration { return &c.up().Jitter }},
	} {
		if v, ok := lookup(d.name); ok {
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				return fmt.Errorf("%s %q: use a duration such as 1h", d.name, v)
			}
			*d.dst() = dur
		}
	}
	if v, ok := lookup("BULWARK_RETAIN_EVENTS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("BULWARK_RETAIN_EVENTS %q: use a count such as 100, or 0 to keep all", v)
		}
		c.retention().Events = n
	}
	for _, e := range []struct {
		name string
		f    *float64
		n    *int
	}{
		{name: "BULWARK_ENROLL_TOKEN_RATE", f: &c.EnrollLimits.TokenRate},
		{name: "BULWARK_ENROLL_TOKEN_BURST", n: &c.EnrollLimits.TokenBurst},
		{name: "BULWARK_ENROLL_FAIL_RATE", f: &c.EnrollLimits.FailRate},
		{name: "BULWARK_ENROLL_FAIL_BURST", n: &c.EnrollLimits.FailBurst},
	} {
		v, ok := lookup(e.name)
		if !ok {
			continue
		}
		if e.f != nil {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x <= 0 {
				return fmt.Errorf("%s %q: use a positive number of attempts per second, such as 500 or 0.5", e.name, v)
			}
			*e.f = x
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%s %q: use a positive count, such as 60", e.name, v)
		}
		*e.n = n
	}
	if v, ok := lookup("BULWARK_METADATA_ONLY"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("BULWARK_METADATA_ONLY %q: use true or false", v)
		}
		c.up().MetadataOnly = b
	}
	if v, ok := lookup("BULWARK_UPSTREAM_MODE"); ok {
		c.up().Mode = v
	}
	if v, ok := lookup("BULWARK_UPSTREAM_TOKEN"); ok {
		c.up().Token = v
	}
	if v, ok := lookup("BULWARK_PRODUCT"); ok {
		c.up().Products = splitList(v)
	}
	if v, ok := lookup("BULWARK_CLASSIFICATION"); ok {
		c.up().Classifications = splitList(v)
	}
	if v, ok := lookup("BULWARK_SEVERITY"); ok {
		c.up().Severities = splitList(v)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseVendors(vs []string) ([]server.HostedVendor, error) {
	var out []server.HostedVendor
	for _, v := range vs {
		name, dir, err := splitPair("vendor", v)
		if err != nil {
			return nil, err
		}
		out = append(out, server.HostedVendor{Name: name, Dir: dir})
	}
	return out, nil
}

func parseUpstreamVendors(vs []string) ([]server.UpstreamVendor, error) {
	var out []server.UpstreamVendor
	for _, v := range vs {
		name, fp, err := splitPair("upstream-vendor", v)
		if err != nil {
			return nil, err
		}
		out = append(out, server.UpstreamVendor{Name: name, RootFingerprint: fp})
	}
	return out, nil
}

// applyFlags applies the flags that were given.
func (c *serverFileConfig) applyFlags(fs *pflag.FlagSet, sf *serverFlags) error {
	set := func(name string) bool { return fs.Changed(name) }
	if set("data-dir") {
		c.DataDir = sf.dataDir
	}
	if set("retain-reports") {
		c.retention().Reports = sf.retainReports
	}
	if set("retain-syncs") {
		c.retention().Syncs = sf.retainSyncs
	}
	if set("retain-events") {
		c.retention().Events = sf.retainEvents
	}
	if set("database") {
		c.Database = sf.database
	}
	sf.content.apply(set, c)
	if set("enroll-token-rate") {
		c.EnrollLimits.TokenRate = sf.enrollLimits.TokenRate
	}
	if set("enroll-token-burst") {
		c.EnrollLimits.TokenBurst = sf.enrollLimits.TokenBurst
	}
	if set("enroll-fail-rate") {
		c.EnrollLimits.FailRate = sf.enrollLimits.FailRate
	}
	if set("enroll-fail-burst") {
		c.EnrollLimits.FailBurst = sf.enrollLimits.FailBurst
	}
	if set("listen") {
		c.Listen = sf.listen
	}
	if set("http") {
		c.HTTP = sf.http
	}
	if set("host") {
		c.Hosts = sf.hosts
	}
	if set("public-url") {
		c.PublicURL = sf.publicURL
	}
	if set("site-name") {
		c.SiteName = sf.siteName
	}
	if set("agent-cert-lifetime") {
		c.AgentCertLifetime = sf.agentCertLifetime
	}
	if set("site-root-key-out") {
		c.SiteRootKeyOut = sf.siteRootKeyOut
	}
	if set("log-level") {
		c.Log.Level = sf.logLevel
	}
	if set("log-format") {
		c.Log.Format = sf.logFormat
	}
	if set("vendor") {
		vs, err := parseVendors(sf.vendors)
		if err != nil {
			return err
		}
		c.Vendors = vs
	}
	if set("upstream") {
		c.up().URL = sf.upstream
	}
	if set("upstream-ca") {
		c.up().CAFingerprint = sf.upstreamCA
	}
	if set("upstream-vendor") {
		uv, err := parseUpstreamVendors(sf.upstreamVendors)
		if err != nil {
			return err
		}
		c.up().Vendors = uv
	}
	if set("sync-interval") {
		c.up().Interval = sf.interval
	}
	if set("sync-jitter") {
		c.up().Jitter = sf.jitter
	}
	if set("metadata-only") {
		c.up().MetadataOnly = sf.metadataOnly
	}
	if set("upstream-mode") {
		c.up().Mode = sf.mode
	}
	if set("upstream-token-file") {
		b, err := capread.Secret(sf.tokenFile, maxTokenFile)
		if err != nil {
			return fmt.Errorf("--upstream-token-file: %w", err)
		}
		c.up().Token = strings.TrimSpace(string(b))
	}
	if set("product") {
		c.up().Products = sf.products
	}
	if set("classification") {
		c.up().Classifications = sf.classifications
	}
	if set("severity") {
		c.up().Severities = sf.severities
	}
	return nil
}

// serverConfig turns the merged settings into the server's Config.
func (c *serverFileConfig) serverConfig() (server.Config, error) {
	if r := c.Retention; r != nil && (r.Reports < 0 || r.Syncs < 0 || r.Events < 0) {
		return server.Config{}, fmt.Errorf("retention: reports %v, syncs %v: use a duration such as 720h, or 0 to keep forever", r.Reports, r.Syncs)
	}
	cfg := server.Config{DataDir: c.DataDir, Database: c.Database, Retention: c.Retention, Listen: c.Listen, HTTP: c.HTTP, Hosts: c.Hosts, PublicURL: c.PublicURL,
		SiteName: c.SiteName, SiteRootKeyOut: c.SiteRootKeyOut, Vendors: c.Vendors, EnrollLimits: c.EnrollLimits}
	if l := c.EnrollLimits; l.TokenRate < 0 || l.TokenBurst < 0 || l.FailRate < 0 || l.FailBurst < 0 {
		return cfg, fmt.Errorf("enroll_limits %+v: use positive rates (per second) and bursts, or leave a key out for its default", l)
	}
	if c.AgentCertLifetime != "" {
		d, err := duration.Parse(c.AgentCertLifetime)
		if err != nil || d < time.Hour {
			return cfg, fmt.Errorf("agent_cert_lifetime %q: use a duration of at least 1h, e.g. 90d or 365d", c.AgentCertLifetime)
		}
		cfg.AgentCertLifetime = d
	}
	if u := c.Upstream; u != nil && (u.URL != "" || u.CAFingerprint != "" || len(u.Vendors) > 0) {
		if u.URL == "" && (len(u.Vendors) == 0 || u.CAFingerprint != "") {
			return cfg, errors.New("upstream settings given without an upstream URL (--upstream)")
		}
		cfg.Upstream = &server.Upstream{URL: strings.TrimRight(u.URL, "/"), CAFingerprint: u.CAFingerprint, Vendors: u.Vendors,
			Interval: u.Interval, Jitter: u.Jitter, MetadataOnly: u.MetadataOnly, Mode: u.Mode, Token: u.Token,
			Products: u.Products, Classifications: u.Classifications, Severities: u.Severities}
	}
	return cfg, nil
}
