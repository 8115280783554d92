package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/ratelimit"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// DefaultGroup is the group agents join when their token names none.
const DefaultGroup = "default"

// Data directory layout.
const (
	dbFile     = "bulwark.db"
	tlsDir     = "tls"
	siteDir    = "site"
	mirrorsDir = "mirrors"
	rootsDir   = "roots"
	cacheDir   = "cache"
	formatFile = "FORMAT"
	format     = "bulwark-data 1\n"
)

// Config is everything a server is told. Zero values are the defaults of
// `bulwark server` with no flags.
type Config struct {
	DataDir string // default ./bulwark-data
	// Database is "" for SQLite in DataDir, or a postgres:// URL.
	Database  string
	Listen    string   // HTTPS address; default ":8443"
	HTTP      string   // plain HTTP address for repositories only; "" = none
	Hosts     []string // extra certificate names; hostname, localhost and addresses are always added
	PublicURL string   // base URL agents and admins use; default https://<hostname>:<port>
	SiteName  string   // site repository name; default "site"
	// SiteRootKeyOut is where the first start writes the site root key,
	// which must not stay on the server: "" writes it into the data
	// directory, and the first start says to move it off the server.
	SiteRootKeyOut string

	// Vendors are vendor repositories this server publishes: directories
	// made with `bulwark repo init`, served read-only.
	Vendors []HostedVendor
	// Upstream, when set, is the server this one syncs vendor repositories
	// from.
	Upstream *Upstream

	// Reload, when set, asks the running server to re-read its TLS
	// material (the server certificate in the data directory) and then
	// call OnReload (the command re-reads its log level): SIGHUP.
	Reload   <-chan struct{}
	OnReload func() error

	// AgentCertLifetime is how long agent certificates are valid; agents
	// renew at two thirds of it. Default pki.AgentValidity (365 days).
	AgentCertLifetime time.Duration

	Logger *slog.Logger
	Now    func() time.Time
	Store  Store // nil: opened from Database
	// Retention is how long history is kept; nil is store.DefaultRetention.
	Retention *store.Retention

	// MaxConnsPerClient and MaxConns cap open connections per client
	// address prefix (an IPv4 address, an IPv6 /64) and in all; 0 → 64 and
	// 4096. BodyTimeout is how long a request body may take to arrive; 0 →
	// 30s. See limit.go.
	MaxConnsPerClient, MaxConns int
	BodyTimeout                 time.Duration
	// EnrollLimits bound failed enrollments per client address prefix and
	// enrollments per token; zero fields are DefaultEnrollLimits.
	EnrollLimits EnrollLimits
	// Content, when set, is the content store replicas share for the
	// targets of vendor repositories (S3-compatible object storage or a
	// directory; see contentstore.go); nil serves them from the
	// repositories' directories.
	Content content.Store
}

// HostedVendor is a vendor repository directory this server serves.
type HostedVendor struct {
	Name string `yaml:"name" json:"name"`
	Dir  string `yaml:"dir" json:"dir"`
}

// Upstream is where vendor repositories are synced from.
type Upstream struct {
	URL           string           `yaml:"url" json:"url"`                       // https://upstream:8443
	CAFingerprint string           `yaml:"ca_fingerprint" json:"ca_fingerprint"` // sha256:… of the upstream's CA
	Vendors       []UpstreamVendor `yaml:"vendors" json:"vendors"`
	Interval      time.Duration    `yaml:"interval" json:"interval"` // default 1h
	Jitter        time.Duration    `yaml:"jitter" json:"jitter"`     // default Interval/10
	MetadataOnly  bool             `yaml:"metadata_only" json:"metadata_only"`
	// Mode is autonomous (default: own groups and approvals) or replica
	// (groups and approvals read from the upstream's API with Token, a
	// viewer token, and signed here with targets verified here).
	Mode            string   `yaml:"mode" json:"mode,omitempty"`
	Token           string   `yaml:"token" json:"-"`
	Products        []string `yaml:"products" json:"products,omitempty"`
	Classifications []string `yaml:"classifications" json:"classifications,omitempty"`
	Severities      []string `yaml:"severities" json:"severities,omitempty"`
}

// Offline reports whether the upstream has no URL: its vendors' content
// arrives only on offline media (`bulwark media import`), which write the
// mirror and the pinned root; a sync then only indexes what is there.
func (u *Upstream) Offline() bool { return u.URL == "" }

// UpstreamVendor is one vendor repository to mirror, pinned by the SHA-256
// of its first root (metadata/1.root.json).
type UpstreamVendor struct {
	Name            string `yaml:"name" json:"name"`
	RootFingerprint string `yaml:"root_fingerprint" json:"root_fingerprint"`
}

// FirstStart is what a server made on its first start; the secrets in it
// are shown once and stored only as hashes.
type FirstStart struct {
	AdminToken  string
	EnrollToken string
	// AdminUser and AdminPassword sign in to the console.
	AdminUser     string
	AdminPassword string
	// SiteRootKey is the file holding the site root key, the one key that
	// signs which vendors agents trust; it belongs offline.
	SiteRootKey string
	// SiteRootKeyOnServer says it was written into the data directory and
	// must be moved off the server.
	SiteRootKeyOnServer bool
}

// Server is a running update server's state.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	st      Store
	ownsSt  bool
	tls     *pki.Material
	cert    atomic.Pointer[tls.Certificate] // the server certificate served; SIGHUP reloads it
	tickets *tickets                        // TLS session-ticket keys shared by replicas (tickets.go)
	site    *tuf.SiteRepository
	repos   map[string]*repo // vendor repositories by name
	metrics *metrics
	handler http.Handler
	gz      gzCache
	meta    metaCache
	roots   rootCache
	bound   string // the HTTPS listener's address once serving

	trustMu sync.Mutex
	trusted map[string]string // the site root's signed vendor list

	approvalsMu sync.Mutex  // serialises approval rewrites of the site repository (lockSite)
	coord       Coordinator // set when replicas share the store: the site lock across them
	ahMu        sync.Mutex
	ahCache     map[string]*groupAnswer // group → its part of the check-in answer (checkincache.go)
	policies    policyCache             // group policies check-ins deliver
	ahGen       uint64                  // bumped by every change of the site repository

	ingest  *Ingester
	enrolls *groupCommit[store.Enrollment]
	seen    *lastSeen
	console consoleState
	// enrollLimit bounds failed enrollments per client prefix and
	// enrollments per token (enrolllimit.go); authFailLimit bounds
	// requests with a bad API token (limit.go).
	enrollLimit   enrollLimiters
	authFailLimit *ratelimit.Limiter
	conns         *connLimiter // the HTTPS listener's, while serving
	fleet         fleetCache   // aggregates for /, status and metrics (fleetcounts.go)
	known         updateKeys   // update ids reports may name (fleetcounts.go)
	syncMu        sync.Mutex   // one sync at a time
	live          liveSyncs    // the syncs running, how far (syncprogress.go)
	syncNow       chan string
	startSynced   chan struct{} // closed when the sync of this Start has ended (StartSynced)
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// repo is one vendor repository the server serves.
type repo struct {
	name       string
	kind       string // hosted | mirror
	dir        string
	root       []byte // trusted first root
	rootSum    string // sha256:… of root
	upstreamTU string // metadata-only mirrors: upstream targets URL agents fetch payloads from
	mu         sync.Mutex
}

// Open prepares the data directory, store, TLS material and site repository
// (creating them on first start) and returns a server ready to serve.
func Open(ctx context.Context, cfg Config) (*Server, *FirstStart, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "bulwark-data"
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8443"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConnsPerClient <= 0 {
		cfg.MaxConnsPerClient = defaultMaxConnsPerClient
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = defaultBodyTimeout
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	// Replicas sharing a data directory may start at the same moment on a
	// fresh one: the first start runs under this lock, so exactly one of
	// them makes the site and the others open what it made.
	unlockDir, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	defer unlockDir()
	fresh, err := prepareDataDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, st: cfg.Store, repos: map[string]*repo{}, syncNow: make(chan string, 16)}
	ok := false
	defer func() {
		if !ok {
			s.closeResources()
		}
	}()
	if s.st == nil {
		db, err := openStore(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		s.st, s.ownsSt = db, true
	}
	s.coord, _ = s.st.(Coordinator)
	hosts, err := certHosts(cfg)
	if err != nil {
		return nil, nil, err
	}
	s.tls, _, err = pki.LoadOrCreate(filepath.Join(cfg.DataDir, tlsDir), pki.Options{Hosts: hosts, Now: cfg.Now})
	if err != nil {
		return nil, nil, err
	}
	s.cert.Store(&s.tls.Server)
	s.tickets = &tickets{dir: filepath.Join(cfg.DataDir, tlsDir), now: cfg.Now, base: s.baseTLSConfig}
	if err := s.tickets.refresh(); err != nil {
		return nil, nil, err
	}
	if s.site, err = openSite(filepath.Join(cfg.DataDir, siteDir), cfg, fresh, s.coord != nil); err != nil {
		return nil, nil, err
	}
	if err := s.loadRepos(); err != nil {
		return nil, nil, err
	}
	if err := s.recordUpstreamPins(); err != nil {
		return nil, nil, err
	}
	if err := s.loadTrust(); err != nil {
		return nil, nil, err
	}
	var first *FirstStart
	if fresh {
		first, err = s.bootstrap(ctx)
		if err != nil {
			return nil, nil, err
		}
	}
	if s.SiteRootKeyOnDisk() {
		s.log.Warn("the site root key is in the data directory: whoever holds this disk can make agents trust any vendor; move it off the server",
			"keys", filepath.Join(cfg.DataDir, siteDir, tuf.KeysDir, "root-*.key"))
	}
	s.metrics = newMetrics(s)
	s.ingest = NewIngester(s.st)
	s.enrolls = newGroupCommit(maxGroup, s.writeEnrollments)
	s.seen = newLastSeen(s.st, s.log)
	s.enrollLimit = newEnrollLimiters(cfg.EnrollLimits)
	s.authFailLimit = newLimiter(authFailEvery, authFailBurst)
	s.handler = s.routes()
	ok = true
	return s, first, nil
}

func (c *Config) validate() error {
	if err := c.EnrollLimits.validate(); err != nil {
		return err
	}
	if c.Database != "" && !postgres.IsURL(c.Database) {
		return fmt.Errorf("database %q: use a postgres://user@host:port/name URL, or leave it empty for SQLite in the data directory", postgres.Redact(c.Database))
	}
	seen := map[string]bool{}
	for _, v := range c.Vendors {
		if err := catalog.CheckVendorName(v.Name); err != nil {
			return fmt.Errorf("vendor repository name: %w", err)
		}
		if v.Dir == "" {
			return fmt.Errorf("vendor repository %s: a directory made with `bulwark repo init` is required", v.Name)
		}
		// Checked before anything is created (a first start makes keys).
		if _, err := os.Stat(filepath.Join(v.Dir, tuf.MetadataDir, "1.root.json")); err != nil {
			return fmt.Errorf("vendor repository %s: %w (make it with `bulwark repo init`)", v.Name, err)
		}
		seen[v.Name] = true
	}
	if u := c.Upstream; u != nil {
		if u.Offline() {
			// A disconnected server: its vendors arrive on offline media.
			if u.Mode == ModeReplica || u.MetadataOnly {
				return errors.New("upstream without a url (offline media only): replica mode and metadata_only need an upstream server")
			}
		} else if pu, err := url.Parse(u.URL); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return fmt.Errorf("upstream url %q: use https://host:port", u.URL)
		} else if _, err := pki.ParseFingerprint(u.CAFingerprint); err != nil {
			return fmt.Errorf("upstream ca_fingerprint: %w", err)
		}
		if len(u.Vendors) == 0 {
			return errors.New("upstream: list at least one vendor repository to sync (name and root_fingerprint)")
		}
		for _, v := range u.Vendors {
			if err := catalog.CheckVendorName(v.Name); err != nil {
				return fmt.Errorf("upstream vendor: %w", err)
			}
			if seen[v.Name] {
				return fmt.Errorf("vendor repository %s is both hosted and synced", v.Name)
			}
			seen[v.Name] = true
			if _, err := tuf.ParseRootFingerprint(v.RootFingerprint); err != nil {
				return fmt.Errorf("upstream vendor %s root_fingerprint: %w", v.Name, err)
			}
		}
		switch u.Mode {
		case "", ModeAutonomous:
		case ModeReplica:
			if !strings.HasPrefix(u.Token, apiTokenPrefix) {
				return errors.New("upstream mode replica: give token, an API token (bwa_…, role viewer is enough) of the upstream")
			}
		default:
			return fmt.Errorf("upstream mode %q: use autonomous or replica", u.Mode)
		}
		if u.Interval < 0 || u.Jitter < 0 {
			return errors.New("upstream interval and jitter must not be negative")
		}
	}
	if c.PublicURL != "" {
		pu, err := url.Parse(c.PublicURL)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return fmt.Errorf("public url %q: use https://host:port", c.PublicURL)
		}
	}
	return nil
}

// openSite opens the site repository, creating it on first start. A
// directory left by a first start that crashed holds nothing yet and is
// made again.
func openSite(dir string, cfg Config, fresh, shared bool) (*tuf.SiteRepository, error) {
	_, err := os.Stat(filepath.Join(dir, tuf.MetadataDir, "root.json"))
	if err == nil && tuf.IsComplete(dir) {
		site, err := tuf.OpenSite(dir, tuf.Options{Now: cfg.Now, Shared: shared})
		if err != nil {
			return nil, fmt.Errorf("site repository: %w", err)
		}
		return site, nil
	}
	if (err != nil && !errors.Is(err, os.ErrNotExist)) || !fresh {
		return nil, fmt.Errorf("site repository %s is missing its root: restore it from a backup (agents trust its root)", dir)
	}
	// A first start that was interrupted may have left a site directory
	// and a root key at --site-root-key-out: both are made again (the key
	// is used again), since nothing has been given out yet.
	_, statErr := os.Stat(dir)
	interrupted := statErr == nil
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("site repository: %w", err)
	}
	name := cfg.SiteName
	if name == "" {
		name = "site"
	}
	vendors, err := firstRootVendors(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.SiteRootKeyOut != "" {
		if _, err := os.Lstat(cfg.SiteRootKeyOut); err == nil && !interrupted {
			return nil, fmt.Errorf("site root key out %s: the file exists; name a new file (a first start makes a new site root key)", cfg.SiteRootKeyOut)
		}
		if err := os.MkdirAll(filepath.Dir(cfg.SiteRootKeyOut), 0o700); err != nil {
			return nil, fmt.Errorf("site root key out: %w", err)
		}
	}
	site, err := tuf.InitSite(dir, tuf.SiteInitOptions{Name: name, Expiry: tuf.DefaultExpiry, Vendors: vendors, RootKeyOut: cfg.SiteRootKeyOut}, tuf.Options{Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("site repository: %w", err)
	}
	if shared {
		// Made here; from now on written by whichever replica holds the lock.
		site.Close()
		if site, err = tuf.OpenSite(dir, tuf.Options{Now: cfg.Now, Shared: true}); err != nil {
			return nil, fmt.Errorf("site repository: %w", err)
		}
	}
	return site, nil
}

// prepareDataDir makes the data directory 0700 and checks its format.
// openLockFile is the data directory's lock file, held while a server
// opens it (lockDataDir).
const openLockFile = "open.lock"

// lockDataDir makes the data directory if needed and takes its lock (an
// exclusive flock, which waits for a replica opening it at the same time).
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, openLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func prepareDataDir(dir string) (fresh bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, formatFile))
	if errors.Is(err, os.ErrNotExist) {
		// First start, or a first start that did not finish: every step of
		// it can run again.
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	if string(b) != format {
		return false, fmt.Errorf("data dir %s has format %q; this bulwark reads %q: run the matching release's upgrade step first", dir, string(b), format)
	}
	return false, nil
}

// bootstrap runs once, on first start: default group, an admin token and an
// enrollment token, and the format marker written last so a crash before it
// starts over.
// The first start's enrollment token is short-lived and limited (F8): it
// is printed once, and may end up in a terminal's scrollback.
const (
	FirstEnrollLifetime = 24 * time.Hour
	FirstEnrollUses     = 100
)

func (s *Server) bootstrap(ctx context.Context) (*FirstStart, error) {
	now := s.now()
	if err := s.st.CreateGroup(ctx, DefaultGroup, now); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	if err := s.site.SetApprovals(ctx, &approval.Document{Group: DefaultGroup}); err != nil {
		return nil, fmt.Errorf("site repository: %w", err)
	}
	admin, _, err := s.newToken(ctx, &store.Token{Kind: store.KindAPI, Name: "first admin", Role: store.RoleAdmin})
	if err != nil {
		return nil, err
	}
	exp := now.Add(FirstEnrollLifetime)
	enroll, _, err := s.newToken(ctx, &store.Token{Kind: store.KindEnroll, Name: "first enrollment", Group: DefaultGroup, ExpiresAt: &exp, MaxUses: FirstEnrollUses})
	if err != nil {
		return nil, err
	}
	password, err := s.firstAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.cfg.DataDir, formatFile), []byte(format), 0o600); err != nil {
		return nil, err
	}
	fs := &FirstStart{AdminToken: admin, EnrollToken: enroll, AdminUser: FirstAdminUser, AdminPassword: password, SiteRootKey: s.cfg.SiteRootKeyOut}
	if keys, err := s.site.RootKeyFiles(); err == nil && len(keys) > 0 {
		fs.SiteRootKey, fs.SiteRootKeyOnServer = keys[0], true
	}
	return fs, nil
}

// loadRepos finds every vendor repository the server serves and its
// trusted root.
func (s *Server) loadRepos() error {
	for _, v := range s.cfg.Vendors {
		root, err := os.ReadFile(filepath.Join(v.Dir, tuf.MetadataDir, "1.root.json"))
		if err != nil {
			return fmt.Errorf("vendor repository %s: %w (make it with `bulwark repo init`)", v.Name, err)
		}
		s.repos[v.Name] = &repo{name: v.Name, kind: "hosted", dir: v.Dir, root: root, rootSum: tuf.RootFingerprint(root)}
	}
	if u := s.cfg.Upstream; u != nil {
		for _, v := range u.Vendors {
			r := &repo{name: v.Name, kind: "mirror", dir: filepath.Join(s.cfg.DataDir, mirrorsDir, v.Name)}
			if b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, rootsDir, v.Name+".json")); err == nil {
				if tuf.RootFingerprint(b) != normFingerprint(v.RootFingerprint) {
					return fmt.Errorf("vendor %s: the pinned root in %s does not match root_fingerprint %s; remove the file to pin again", v.Name, rootsDir, v.RootFingerprint)
				}
				r.root, r.rootSum = b, tuf.RootFingerprint(b)
			}
			if u.MetadataOnly {
				r.upstreamTU = u.URL + "/repos/" + v.Name + "/targets"
			}
			s.repos[v.Name] = r
		}
	}
	return nil
}

// normFingerprint is a configured root fingerprint in the form
// tuf.RootFingerprint writes, or "" when it is not one (checked at start).
func normFingerprint(s string) string {
	fp, _ := tuf.ParseRootFingerprint(s)
	return fp
}

// certHosts are the names the server certificate carries.
func certHosts(cfg Config) ([]string, error) {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	hosts = append(hosts, cfg.Hosts...)
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err == nil {
			hosts = append(hosts, u.Hostname())
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

// URL is the base URL the server is reached at.
func (s *Server) URL() string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	listen := s.cfg.Listen
	if s.bound != "" {
		listen = s.bound
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		port = "8443"
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "https://" + net.JoinHostPort(h, port)
}

// CAFingerprint is the pin agents and admins use.
func (s *Server) CAFingerprint() string { return pki.Fingerprint(s.tls.CA.Cert) }

// CACertPEM is the site CA certificate.
func (s *Server) CACertPEM() []byte { return s.tls.CA.CertPEM }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig is the HTTPS configuration: the server certificate, and client
// certificates from the site CA verified when presented (agents); each
// handshake gets it with the session-ticket keys the replicas share.
func (s *Server) TLSConfig() *tls.Config {
	c := s.baseTLSConfig()
	if s.tickets != nil {
		c.GetConfigForClient = s.tickets.forClient
	}
	return c
}

func (s *Server) baseTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   pki.CipherSuites(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      s.tls.CA.Pool(),
	}
}

// Repositories describes the vendor repositories served, for printing.
func (s *Server) Repositories() []RepoInfo {
	var out []RepoInfo
	for _, r := range s.sortedRepos() {
		out = append(out, s.repoInfo(r))
	}
	return out
}

func (s *Server) sortedRepos() []*repo {
	var rs []*repo
	for _, r := range s.repos {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *repo) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	return rs
}

// Run serves until ctx is done, then shuts down gracefully. ready is called
// once the listeners are bound.
func (s *Server) Run(ctx context.Context, ready func()) error {
	ln, plain, err := Listen(s.cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln, plain, ready)
}

// Listen binds cfg's HTTPS address (default :8443) and, when set, its plain
// HTTP one. A first start binds before Open creates anything, so that a
// busy port leaves no data directory, token or key behind.
func Listen(cfg Config) (ln, plain net.Listener, err error) {
	addr := cfg.Listen
	if addr == "" {
		addr = ":8443"
	}
	if ln, err = listen(addr, "--listen"); err != nil {
		return nil, nil, err
	}
	if cfg.HTTP != "" {
		if plain, err = listen(cfg.HTTP, "--http"); err != nil {
			ln.Close()
			return nil, nil, err
		}
	}
	return ln, plain, nil
}

// listen binds addr, the value of flag; its error says what to do: free a
// busy port, or give a HOST:PORT.
func listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen %s: %w (free the port or choose another with %s)", addr, err, flag)
	default:
		return nil, fmt.Errorf("listen %s: %w (%s takes HOST:PORT, e.g. :8443 or 127.0.0.1:8443)", addr, err, flag)
	}
}

// Serve serves HTTPS on ln (and, when plain is not nil, repositories only
// over plain HTTP on it) until ctx is done.
func (s *Server) Serve(ctx context.Context, ln, plain net.Listener, ready func()) error {
	s.bound = ln.Addr().String()
	if err := s.writeLocalURL(); err != nil {
		return err
	}
	s.Start()
	refused := func(string) { s.metrics.connsRefused.Inc() }
	s.conns = limitConns(ln, s.cfg.MaxConnsPerClient, s.cfg.MaxConns, refused)
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 2)
	go func() { errc <- hs.ServeTLS(s.conns, "", "") }()
	var ps *http.Server
	if plain != nil {
		ps = &http.Server{Handler: s.plainRoutes(), ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: s.cfg.BodyTimeout, IdleTimeout: 2 * time.Minute}
		pl := limitConns(plain, s.cfg.MaxConnsPerClient, s.cfg.MaxConns, refused)
		go func() { errc <- ps.Serve(pl) }()
	}
	if s.cfg.Reload != nil {
		go s.reloadOn(ctx, s.cfg.Reload)
	}
	s.log.Info("serving", "https", ln.Addr().String(), "url", s.URL())
	if ready != nil {
		ready()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	s.log.Info("shutting down")
	_ = hs.Shutdown(sctx)
	if ps != nil {
		_ = ps.Shutdown(sctx)
	}
	s.Stop()
	_ = os.Remove(filepath.Join(s.cfg.DataDir, LocalURLFile))
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// LocalURLFile, in the data directory, holds a loopback URL of the running
// server so that `bulwark admin --data-dir` on the same machine finds it.
const LocalURLFile = "server.url"

func (s *Server) writeLocalURL() error {
	host, port, err := net.SplitHostPort(s.bound)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // a listener on [::] takes IPv4 too
	}
	u := "https://" + net.JoinHostPort(host, port) + "\n"
	return atomicfile.WriteFile(filepath.Join(s.cfg.DataDir, LocalURLFile), []byte(u), 0o600)
}

// Start starts the background workers (sync scheduler, timestamp refresh,
// repository indexing). Stop ends them.
func (s *Server) Start() {
	if s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	synced := make(chan struct{})
	s.startSynced = synced
	s.wg.Go(func() { s.syncLoop(ctx, synced) })
	s.wg.Go(func() { s.refreshLoop(ctx) })
	s.wg.Go(func() { s.pruneLoop(ctx) })
	if s.coord != nil {
		s.wg.Go(func() { s.coord.ListenSite(ctx, s.dropSiteCaches) })
	}
	s.wg.Go(func() { s.fleetLoop(ctx) })
	s.wg.Go(func() { s.rolloutLoop(ctx) })
	if s.tickets != nil {
		s.wg.Go(func() { s.tickets.loop(ctx.Done(), s.log) })
	}
}

// StartSynced is closed when the sync that Start runs has ended, well or
// not (nil before Start). Until then that sync may still change the
// mirrors, the index and the content store.
func (s *Server) StartSynced() <-chan struct{} { return s.startSynced }

// Stop ends the background workers and waits for them.
func (s *Server) Stop() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

// Close stops the workers and releases the store and site repository.
func (s *Server) Close() error {
	s.Stop()
	return s.closeResources()
}

func (s *Server) closeResources() error {
	var errs []error
	if s.enrolls != nil {
		s.enrolls.close()
		s.enrolls = nil
	}
	if s.ingest != nil {
		s.ingest.Close()
		s.ingest = nil
	}
	if s.seen != nil {
		s.seen.Close()
		s.seen = nil
	}
	s.roots.close()
	if s.site != nil {
		errs = append(errs, s.site.Close())
		s.site = nil
	}
	if s.ownsSt && s.st != nil {
		errs = append(errs, s.st.Close())
		s.st = nil
	}
	return errors.Join(errs...)
}

// refreshLoop keeps the site repository's timestamp fresh.
func (s *Server) refreshLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if unlock, err := s.lockSite(ctx); err != nil {
			s.log.Error("refresh site repository", "err", err)
		} else {
			if _, err := s.site.Refresh(ctx); err != nil {
				s.log.Error("refresh site repository", "err", err)
			}
			s.forgetApprovals()
			unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
