//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/sdnotify"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/version"
)

func newServerCmd() *cobra.Command {
	var (
		configPath     string
		adminTokenFile string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the update server: repositories, sync, approvals, agents",
		Long: `Run the update server. With no flags it is a working server: data in
./bulwark-data (SQLite, site repository, TLS material; created 0700), HTTPS on
:8443 with a site CA and server certificate made on first start (for the host
name, localhost and the machine's addresses). On first start it prints the
console URL, an admin token (stored only as a hash), the console's first admin
user "admin" with its password and the exact command that enrolls an agent,
Secrets are printed only when the output is a terminal; otherwise (systemd's
journal, a log file) they are written to admin.token, enroll.token and
first-admin-password (mode 0600) in the data directory and only the paths are
printed. The first enrollment token is valid 24 hours for 100 enrollments.
which pins the site CA and the site's first TUF root by fingerprint.

The site root key signs the one thing the online server must not decide:
which vendor repositories (by root fingerprint) agents trust. The first start
signs the vendors it is started with, then writes the key to
--site-root-key-out FILE, or into the data directory with a loud notice to
move it off the server. The server runs with online keys only; add or remove
a vendor later with 'bulwark admin vendors trust|untrust --site-root-key FILE'.

It serves, over HTTPS only unless --http is given:
  /                          status page (version, repositories, sync, computers)
  /console/                  web console (sign in with a user or an API token)
  /repos/<vendor>/metadata/  vendor repositories it publishes or mirrors
  /repos/<vendor>/targets/
  /site/metadata/, /site/targets/   its own site repository (group approvals)
  /api/v1/                   admin API (bearer tokens; /api/v1/openapi.json)
  /agent/v1/                 agent API (enrollment, then mTLS)
  /healthz, /metrics         health and Prometheus metrics

Settings come from, lowest first: defaults, the YAML file given with --config,
then the *.yaml files of its drop-in directory (FILE.d, e.g.
/etc/bulwark/server.yaml.d) in lexical order, then BULWARK_* environment
variables (an empty one counts as unset), then flags; each overrides the keys
it sets. A key the file does not know, or a bad value, is refused naming the
file and key, the variable or the flag. A file that holds a secret (upstream
token, database password) must be mode 0600. Every setting:
` + serverSettings.Describe() + `
Lists are comma-separated in a variable (BULWARK_HOST=a,b); vendors are
NAME=DIR and upstream vendors NAME=sha256:… in a flag or variable.

The database is SQLite in the data directory unless --database names a
PostgreSQL database (postgres://user[:password]@host:port/name?sslmode=…;
libpq's PGPASSWORD and ~/.pgpass work too, so the password need not be on the
command line). The schema is migrated on start.

Config file (every key optional):
  data_dir: ./bulwark-data
  database: ""               # postgres://bulwark@db:5432/bulwark; empty = SQLite in data_dir
  retention:                 # history pruned hourly; 0 keeps it forever
    reports: 720h            # delivered batch ids (retries older than this apply again, harmlessly)
    syncs: 2160h             # finished sync runs
    events: 100              # reported state changes kept per computer (its timeline)
  enroll_limits:             # a fleet behind one NAT address enrolls at the token's rate
    token_rate: 500          # enrollments per second per enrollment token, after token_burst
    token_burst: 1000
    fail_rate: 1             # failed attempts per second per address (IPv4, IPv6 /64), after fail_burst;
    fail_burst: 60           #   over it every attempt from that address is answered 429
  listen: ":8443"
  http: ""                   # plain HTTP for repositories only; off unless set
  hosts: [updates.example.com]
  public_url: https://updates.example.com:8443
  site_name: site
  site_root_key_out: ""      # first start: where the site root key goes
  vendors:                   # vendor repositories made with 'bulwark repo init'
    - {name: example, dir: /srv/bulwark/vendor}
  upstream:                  # sync vendor repositories from another server
    url: https://hq.example.com:8443
    ca_fingerprint: sha256:<64 hex>
    vendors:
      - {name: example, root_fingerprint: sha256:<64 hex of metadata/1.root.json>}
    interval: 1h
    jitter: 6m
    metadata_only: false     # agents then fetch payloads from the upstream
    mode: autonomous         # or replica: groups and approvals from the upstream
    token: bwa_…             # replica: an upstream API token (viewer); the file must then be mode 0600
    products: []             # filters; empty = everything
    classifications: []
    severities: []
  agent_cert_lifetime: 365d  # agents renew at two thirds of it over mTLS
  content_store: ""          # s3://bucket/prefix or /shared/dir: payloads copied there and served from it
  s3:                        # the key: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or credentials_file
    endpoint: https://s3.example.com:9000
    region: us-east-1
    credentials_file: /etc/bulwark/s3.yaml   # mode 0600: access_key_id, secret_access_key
    ca_file: ""              # PEM CA of the endpoint's certificate if the system does not trust it
  log: {level: info, format: text}

SIGTERM or SIGINT shuts down gracefully. SIGHUP (systemctl reload) re-reads the
server certificate in the data directory and the log level, and keeps running. With NOTIFY_SOCKET set (systemd
Type=notify) it reports READY=1 once listening.`,
		Example: `  bulwark server
  bulwark server --data-dir /var/lib/bulwark --vendor example=/srv/vendor
  BULWARK_DATABASE=postgres://bulwark@db:5432/bulwark bulwark server
  bulwark server --upstream https://hq:8443 --upstream-ca sha256:… --upstream-vendor example=sha256:…
  bulwark server --upstream-vendor example=sha256:…   # disconnected: updates arrive by bulwark media import`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			load := func() (*serverFileConfig, error) {
				return loadServerConfig(configPath, os.Environ, cmd.Flags())
			}
			fc, err := load()
			if err != nil {
				return err
			}
			cfg, err := fc.serverConfig()
			if err != nil {
				return err
			}
			logger, level, err := newLogger(cmd.ErrOrStderr(), fc.Log.Level, fc.Log.Format)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			if cfg.Content, err = fc.contentStore(ctx, os.Getenv); err != nil {
				return err
			}
			// SIGHUP re-reads the TLS material and the log level (the
			// settings layered again); it never stops the server.
			cfg.Reload, cfg.OnReload = reloadOnHUP(ctx, logger, level, load)
			return runServer(ctx, cmd.OutOrStdout(), cfg, adminTokenFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML config file; the *.yaml files of its drop-in directory FILE.d are read after it, in lexical order")
	f.StringVar(&adminTokenFile, "admin-token-file", "", "on first start, also write the admin token to this file (mode 0600), for automation")
	registerServerFlags(f)
	cmd.AddCommand(newServerConfigCmd())
	cmd.AddCommand(newServerMigrateCmd())
	cmd.AddCommand(newServerAdminTokenCmd())
	return cmd
}

func runServer(ctx context.Context, out io.Writer, cfg server.Config, adminTokenFile string) error {
	// Bind first: a port that is busy (or not ours) is refused before the
	// first start makes a data directory, keys or tokens nobody would see.
	ln, plain, err := server.Listen(cfg)
	if err != nil {
		return err
	}
	s, first, err := server.Open(ctx, cfg)
	if err != nil {
		ln.Close()
		if plain != nil {
			plain.Close()
		}
		return err
	}
	defer s.Close()
	siteRoot, err := s.SiteRootFingerprint()
	if err != nil {
		return err
	}
	ready := func() {
		url, pin := s.URL(), s.CAFingerprint()
		fmt.Fprintf(out, "Bulwark update server %s\n", version.String())
		fmt.Fprintf(out, "  console:  %s/console/\n", url)
		fmt.Fprintf(out, "  data:     %s\n", cfg.DataDir)
		if cfg.Database != "" {
			fmt.Fprintf(out, "  database: %s\n", postgres.Redact(cfg.Database))
		}
		fmt.Fprintf(out, "  site CA:  %s\n", pin)
		fmt.Fprintf(out, "  site root: %s\n", siteRoot)
		for _, r := range s.Repositories() {
			fmt.Fprintf(out, "  vendor repository %s (%s): root %s%s\n", r.Name, r.Kind, orPending(r.RootFingerprint), trustNote(r.SiteTrust))
		}
		if first != nil {
			printFirstStart(out, cfg.DataDir, adminTokenFile, url, pin, siteRoot, first)
			if first.SiteRootKeyOnServer {
				fmt.Fprintf(out, "\n!!! The site root key is in the data directory: %s\n", first.SiteRootKey)
				fmt.Fprintf(out, "!!! It alone decides which vendors agents trust. Move it off this server now (keep it offline);\n")
				fmt.Fprintf(out, "!!! the server runs without it. Next time start with --site-root-key-out FILE.\n")
			} else {
				fmt.Fprintf(out, "\nSite root key (offline; signs which vendors agents trust): %s\n", first.SiteRootKey)
			}
			fmt.Fprintf(out, "Trust another vendor: bulwark admin vendors trust NAME sha256:<its root fingerprint> --site-root-key FILE\n")
		} else {
			fmt.Fprintf(out, "\nThe admin token was shown at first start; make more with 'bulwark admin tokens create'.\n")
		}
		fmt.Fprintln(out, "Ready.")
		if err := sdnotify.Notify(os.Getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
			cfg.Logger.Warn("sd_notify", "err", err)
		}
	}
	err = s.Serve(ctx, ln, plain, ready)
	_ = sdnotify.Notify(os.Getenv("NOTIFY_SOCKET"), "STOPPING=1")
	return err
}

// First-start secret files in the data directory (F8), written when the
// banner does not go to a terminal (a journal, a log file, a pipe).
const (
	firstAdminTokenFile  = "admin.token"
	firstEnrollTokenFile = "enroll.token"
)

// printFirstStart shows the first admin token and the enrollment command.
// On a terminal the secrets are printed; anywhere else (systemd's journal,
// a log file) they go to 0600 files in the data directory and only their
// paths are printed, and the enrollment command reads the token from a
// file, never from the command line.
func printFirstStart(out io.Writer, dataDir, adminTokenFile, url, pin, siteRoot string, first *server.FirstStart) {
	f, ok := out.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	write := func(p, secret string) bool {
		if err := atomicfile.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			fmt.Fprintf(out, "  (could not write %s: %v)\n", p, err)
			return false
		}
		return true
	}
	if adminTokenFile != "" {
		write(adminTokenFile, first.AdminToken)
	}
	lifetime := fmt.Sprintf("valid %d hours for %d enrollments", int(server.FirstEnrollLifetime.Hours()), server.FirstEnrollUses)
	if tty {
		fmt.Fprintf(out, "\nAdmin token (shown once, stored only as a hash; keep it safe):\n  %s\n", first.AdminToken)
		showFirstPassword(out, dataDir, url, first)
		fmt.Fprintf(out, "\nEnroll an agent (token %s; make more with 'bulwark admin tokens create --kind enroll'):\n", lifetime)
		fmt.Fprintf(out, "  printf '%%s\\n' %s | bulwark agent enroll --server %s --token-file - --ca-fingerprint %s --site-root %s\n", first.EnrollToken, url, pin, siteRoot)
	} else {
		adminPath := adminTokenFile
		if adminPath == "" {
			adminPath = filepath.Join(dataDir, firstAdminTokenFile)
			if !write(adminPath, first.AdminToken) {
				adminPath = ""
			}
		}
		enrollPath := filepath.Join(dataDir, firstEnrollTokenFile)
		if !write(enrollPath, first.EnrollToken) {
			enrollPath = ""
		}
		fmt.Fprintf(out, "\nAdmin token (stored only as a hash; not printed here because this is not a terminal):\n  in %s (mode 0600): move it somewhere safe\n", adminPath)
		showFirstPassword(out, dataDir, url, first)
		fmt.Fprintf(out, "\nEnroll an agent (token in %s, mode 0600, %s; copy it to the machine):\n", enrollPath, lifetime)
		fmt.Fprintf(out, "  bulwark agent enroll --server %s --token-file %s --ca-fingerprint %s --site-root %s\n", url, firstEnrollTokenFile, pin, siteRoot)
	}
	fmt.Fprintf(out, "\nAdminister:\n  bulwark admin --server %s --ca-fingerprint %s --token-file <admin token file> groups list\n", url, pin)
	fmt.Fprintf(out, "\nSync another server from this one: on it, run\n  bulwark server --upstream %s --upstream-ca %s --upstream-vendor NAME=<root fingerprint above>\n", url, pin)
}

// trustNote says when agents will refuse a vendor repository's updates.
func trustNote(t string) string {
	switch t {
	case "unlisted":
		return " — NOT in the site's signed vendor list: agents refuse its updates (bulwark admin vendors trust)"
	case "root-differs":
		return " — the site's signed vendor list names another root: agents refuse its updates"
	}
	return ""
}

func orPending(s string) string {
	if s == "" {
		return "pinned at first sync"
	}
	return s
}
