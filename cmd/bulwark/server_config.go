//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// serverFileConfig is what `bulwark server` runs with: serverSettings
// layered (defaults, the --config file and its drop-ins, BULWARK_*
// variables, flags) and stored by their yaml keys.
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
	AgentCertLifetime time.Duration         `yaml:"agent_cert_lifetime"`
	Vendors           []server.HostedVendor `yaml:"vendors"`
	Upstream          *upstreamFileConfig   `yaml:"upstream"`
	Log               struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`

	// SiteRootKeyOut is where the first start writes the site root key.
	SiteRootKeyOut string `yaml:"site_root_key_out"`

	// EnrollLimits: failed enrollments per address prefix, enrollments
	// per token (server.EnrollLimits).
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

// Checks shared by the settings tables.
var (
	positiveInt = func(v any) error {
		if v.(int) <= 0 {
			return errors.New("use a positive count, such as 60")
		}
		return nil
	}
	positiveFloat = func(v any) error {
		if v.(float64) <= 0 {
			return errors.New("use a positive number of attempts per second, such as 500 or 0.5")
		}
		return nil
	}
	notNegative = func(v any) error {
		if v.(int) < 0 {
			return errors.New("use a count such as 100, or 0 to keep all")
		}
		return nil
	}
	logLevel = func(v any) error {
		_, err := parseLevel(v.(string))
		return err
	}
	logFormat = func(v any) error {
		if f := v.(string); f != "text" && f != "json" {
			return errors.New("use text or json")
		}
		return nil
	}
	nonEmpty = func(v any) bool { return v.(string) != "" }
)

// serverSettings are every setting of `bulwark server`, each once: its
// key in the config file, flag, variable, default and help.
var serverSettings = config.Table{
	{Key: "data_dir", Flag: "data-dir", Env: "BULWARK_DATA_DIR", Default: "bulwark-data",
		Help: "the server's data directory (SQLite, site repository, TLS material), created 0700"},
	{Key: "database", Flag: "database", Env: "BULWARK_DATABASE",
		Help: "PostgreSQL URL postgres://user@host:port/name (default: SQLite in the data directory); prefer BULWARK_DATABASE or the config file when it holds a password",
		Secret: func(v any) bool {
			u, err := url.Parse(v.(string))
			if err != nil || u.User == nil {
				return false
			}
			_, ok := u.User.Password()
			return ok
		}},
	{Key: "listen", Flag: "listen", Env: "BULWARK_LISTEN", Default: ":8443", Help: "HTTPS listen address"},
	{Key: "http", Flag: "http", Env: "BULWARK_HTTP", Help: "also serve repositories (only) over plain HTTP on this address; off unless set"},
	{Key: "hosts", Kind: config.List, Flag: "host", Env: "BULWARK_HOST", Help: "extra DNS name or IP address for the server certificate (repeatable)"},
	{Key: "public_url", Flag: "public-url", Env: "BULWARK_PUBLIC_URL", Help: "URL agents and admins reach this server at (default https://<hostname>:<port>)"},
	{Key: "site_name", Flag: "site-name", Env: "BULWARK_SITE_NAME", Default: "site", Help: "name of the site repository, made on first start"},
	{Key: "site_root_key_out", Flag: "site-root-key-out", Env: "BULWARK_SITE_ROOT_KEY_OUT",
		Help: "first start: write the site root key (the offline key that signs which vendors agents trust) to this new file, never into the data directory"},
	{Key: "vendors", Kind: config.Pairs, Fields: [2]string{"name", "dir"}, Flag: "vendor", Env: "BULWARK_VENDOR",
		Help: "serve a vendor repository made with 'bulwark repo init': NAME=DIR (repeatable)"},
	{Key: "retention.reports", Kind: config.Duration, Flag: "retain-reports", Env: "BULWARK_RETAIN_REPORTS", Default: store.DefaultRetention.Reports,
		Help: "how long delivered report batch ids are remembered; 0 keeps them forever"},
	{Key: "retention.syncs", Kind: config.Duration, Flag: "retain-syncs", Env: "BULWARK_RETAIN_SYNCS", Default: store.DefaultRetention.Syncs,
		Help: "how long finished sync runs stay in the sync history; 0 keeps them forever"},
	{Key: "retention.events", Kind: config.Int, Flag: "retain-events", Env: "BULWARK_RETAIN_EVENTS", Default: store.DefaultRetention.Events, Check: notNegative,
		Help: "reported state changes kept per computer (its timeline); 0 keeps them all"},
	{Key: "enroll_limits.token_rate", Kind: config.Float, Flag: "enroll-token-rate", Env: "BULWARK_ENROLL_TOKEN_RATE", Default: server.DefaultEnrollLimits.TokenRate, Check: positiveFloat,
		Help: "enrollments per second one enrollment token may make, after --enroll-token-burst (machines behind one NAT address enroll at this rate)"},
	{Key: "enroll_limits.token_burst", Kind: config.Int, Flag: "enroll-token-burst", Env: "BULWARK_ENROLL_TOKEN_BURST", Default: server.DefaultEnrollLimits.TokenBurst, Check: positiveInt,
		Help: "enrollments one enrollment token may make at once"},
	{Key: "enroll_limits.fail_rate", Kind: config.Float, Flag: "enroll-fail-rate", Env: "BULWARK_ENROLL_FAIL_RATE", Default: server.DefaultEnrollLimits.FailRate, Check: positiveFloat,
		Help: "failed enrollment attempts per second allowed from one address (an IPv4 address, an IPv6 /64) after --enroll-fail-burst; over it every attempt is answered 429"},
	{Key: "enroll_limits.fail_burst", Kind: config.Int, Flag: "enroll-fail-burst", Env: "BULWARK_ENROLL_FAIL_BURST", Default: server.DefaultEnrollLimits.FailBurst, Check: positiveInt,
		Help: "failed enrollment attempts allowed from one address at once"},
	{Key: "upstream.url", Flag: "upstream", Env: "BULWARK_UPSTREAM", Help: "sync vendor repositories from this server: https://host:port"},
	{Key: "upstream.ca_fingerprint", Flag: "upstream-ca", Env: "BULWARK_UPSTREAM_CA", Help: "the upstream's site CA fingerprint, sha256:<64 hex>, as it printed"},
	{Key: "upstream.vendors", Kind: config.Pairs, Fields: [2]string{"name", "root_fingerprint"}, Flag: "upstream-vendor", Env: "BULWARK_UPSTREAM_VENDOR",
		Help: "vendor repository to sync: NAME=sha256:<fingerprint of its metadata/1.root.json> (repeatable)"},
	{Key: "upstream.interval", Kind: config.Duration, Flag: "sync-interval", Env: "BULWARK_SYNC_INTERVAL", Default: time.Hour, Help: "time between scheduled syncs"},
	{Key: "upstream.jitter", Kind: config.Duration, Flag: "sync-jitter", Env: "BULWARK_SYNC_JITTER", Help: "random extra delay added to each interval (default interval/10)"},
	{Key: "upstream.metadata_only", Kind: config.Bool, Flag: "metadata-only", Env: "BULWARK_METADATA_ONLY", Help: "sync metadata only; agents fetch payloads from the upstream"},
	{Key: "upstream.mode", Flag: "upstream-mode", Env: "BULWARK_UPSTREAM_MODE", Default: server.ModeAutonomous,
		Help: "autonomous (own groups and approvals) or replica (the upstream's, read with --upstream-token-file)"},
	{Key: "upstream.token", Env: "BULWARK_UPSTREAM_TOKEN", Secret: nonEmpty,
		Help: "replica mode: an API token of the upstream (role viewer is enough); on the command line use --upstream-token-file"},
	{Key: "upstream.products", Kind: config.List, Flag: "product", Env: "BULWARK_PRODUCT", Help: "sync only these products (repeatable)"},
	{Key: "upstream.classifications", Kind: config.List, Flag: "classification", Env: "BULWARK_CLASSIFICATION", Help: "sync only these classifications (repeatable)"},
	{Key: "upstream.severities", Kind: config.List, Flag: "severity", Env: "BULWARK_SEVERITY", Help: "sync only these severities (repeatable)"},
	{Key: "agent_cert_lifetime", Kind: config.Duration, Flag: "agent-cert-lifetime", Env: "BULWARK_AGENT_CERT_LIFETIME", Default: 365 * 24 * time.Hour,
		Help: "how long agent certificates are valid; agents renew at two thirds (e.g. 90d)",
		Check: func(v any) error {
			if v.(time.Duration) < time.Hour {
				return errors.New("use a duration of at least 1h, e.g. 90d or 365d")
			}
			return nil
		}},
	{Key: "content_store", Flag: "content-store", Env: "BULWARK_CONTENT_STORE",
		Help: "where replicas share the vendor repositories' payloads: s3://bucket/prefix, or an absolute directory path (default: served from the repositories' directories)"},
	{Key: "s3.endpoint", Flag: "s3-endpoint", Env: "BULWARK_S3_ENDPOINT", Help: "the S3-compatible store's URL, https://host:port (path-style addressing for anything but AWS)"},
	{Key: "s3.region", Flag: "s3-region", Env: "BULWARK_S3_REGION", Help: "the S3 region (default us-east-1)"},
	{Key: "s3.credentials_file", Flag: "s3-credentials-file", Env: "BULWARK_S3_CREDENTIALS_FILE",
		Help: "a 0600 YAML file with access_key_id and secret_access_key (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"},
	{Key: "s3.ca_file", Flag: "s3-ca-file", Env: "BULWARK_S3_CA_FILE", Help: "a PEM file of the CA the S3 endpoint's certificate chains to (default: the system's CAs)"},
	{Key: "log.level", Flag: "log-level", Env: "BULWARK_LOG_LEVEL", Default: "info", Check: logLevel, Help: "log level: debug, info, warn, error"},
	{Key: "log.format", Flag: "log-format", Env: "BULWARK_LOG_FORMAT", Default: "text", Check: logFormat, Help: "log format: text or json"},
}

// loadServerConfig layers the server's settings: defaults, the config
// file at path (if any) and then the *.yaml files of its drop-in directory
// (path.d) in lexical order, the variables of environ (nil: none), the
// flags of fs that were set (nil: none). --upstream-token-file, when set,
// gives the upstream token.
func loadServerConfig(path string, environ func() []string, fs *pflag.FlagSet) (*serverFileConfig, error) {
	return loadServerConfigFrom(serverSettings, path, environ, fs)
}

// loadServerConfigFrom is loadServerConfig with the settings of t (the
// server's, some flags renamed).
func loadServerConfigFrom(t config.Table, path string, environ func() []string, fs *pflag.FlagSet) (*serverFileConfig, error) {
	s, err := layerServerConfig(t, path, environ, fs)
	if err != nil {
		return nil, err
	}
	c := &serverFileConfig{}
	if err := s.Unmarshal(c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if fs != nil && fs.Changed("upstream-token-file") {
		p, _ := fs.GetString("upstream-token-file")
		b, err := capread.Secret(p, maxTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-token-file: %w", err)
		}
		c.up().Token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// layerServerConfig layers t (serverSettings, or a variant) for
// loadServerConfig and `bulwark server config`.
func layerServerConfig(t config.Table, path string, environ func() []string, fs *pflag.FlagSet) (*config.Settings, error) {
	var src config.Sources
	if path != "" {
		files, err := config.Files(path, true)
		if err != nil {
			return nil, err
		}
		src.Files = files
	}
	src.Environ, src.Flags = environ, fs
	return t.Load(src)
}

// registerServerFlags adds the flags of every server setting, and
// --upstream-token-file.
func registerServerFlags(f *pflag.FlagSet) {
	serverSettings.Register(f)
	f.String("upstream-token-file", "", "replica mode: file holding an API token of the upstream (role viewer is enough)")
}

func (c *serverFileConfig) up() *upstreamFileConfig {
	if c.Upstream == nil {
		c.Upstream = &upstreamFileConfig{}
	}
	return c.Upstream
}

// serverConfig turns the layered settings into the server's Config. Each
// value was checked where it came from; what needs several settings is
// checked here and by the server.
func (c *serverFileConfig) serverConfig() (server.Config, error) {
	cfg := server.Config{DataDir: c.DataDir, Database: c.Database, Retention: c.Retention, Listen: c.Listen, HTTP: c.HTTP, Hosts: c.Hosts, PublicURL: c.PublicURL,
		SiteName: c.SiteName, SiteRootKeyOut: c.SiteRootKeyOut, Vendors: c.Vendors, EnrollLimits: c.EnrollLimits, AgentCertLifetime: c.AgentCertLifetime}
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
