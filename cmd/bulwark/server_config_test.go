//go:build !agentonly

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// environ makes an environment for loadServerConfig from a map.
func environ(env map[string]string) func() []string {
	return func() []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}
}

// serverFlagSet parses args as `bulwark server` would.
func serverFlagSet(t testing.TB, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	registerServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func writeFile(t testing.TB, p, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServerConfigPrecedence: defaults < file < drop-ins (in order) <
// BULWARK_* < flags, for every kind of setting.
func TestServerConfigPrecedence(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	dir := t.TempDir()
	p := writeFile(t, filepath.Join(dir, "server.yaml"), `data_dir: /file/data
listen: ":9000"
site_name: from-file
public_url: https://file:8443
vendors: [{name: example, dir: /srv/vendor}]
upstream:
  url: https://file:8443
  ca_fingerprint: `+pin+`
  vendors: [{name: example, root_fingerprint: `+pin+`}]
  interval: 30m
  severities: [critical]
log: {level: debug}
enroll_limits: {token_burst: 5000}
`, 0o644)
	writeFile(t, filepath.Join(dir, "server.yaml.d", "10-a.yaml"), "site_name: from-10\npublic_url: https://dropin10:8443\n", 0o644)
	writeFile(t, filepath.Join(dir, "server.yaml.d", "20-b.yaml"), "site_name: from-20\nretention: {events: 7}\n", 0o644)
	env := map[string]string{"BULWARK_LISTEN": ":9100", "BULWARK_SYNC_JITTER": "2m", "BULWARK_SEVERITY": "critical, important",
		"BULWARK_UPSTREAM_MODE": "replica", "BULWARK_UPSTREAM_TOKEN": "bwa_x",
		"BULWARK_DATABASE": "postgres://bulwark@db/bulwark", "BULWARK_RETAIN_SYNCS": "0",
		"BULWARK_ENROLL_TOKEN_RATE": "800", "BULWARK_SITE_NAME": "", "BULWARK_AGENT_CERT_LIFETIME": "90d",
		"BULWARK_UNRELATED": "x"}
	fs := serverFlagSet(t, "--listen", ":9200", "--upstream", "https://flag:8443/", "--enroll-fail-burst", "20", "--sync-interval", "2d")
	c, err := loadServerConfig(p, environ(env), fs)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstream
	d := server.DefaultEnrollLimits
	switch {
	case cfg.DataDir != "/file/data":
		t.Errorf("data dir %q: the file's value should stand", cfg.DataDir)
	case cfg.SiteName != "from-20":
		t.Errorf("site name %q: the last drop-in should win (an empty BULWARK_SITE_NAME is unset)", cfg.SiteName)
	case cfg.PublicURL != "https://dropin10:8443":
		t.Errorf("public url %q: the drop-in should beat the file", cfg.PublicURL)
	case cfg.Database != "postgres://bulwark@db/bulwark":
		t.Errorf("database %q: the environment should set it", cfg.Database)
	case cfg.Retention == nil || *cfg.Retention != store.Retention{Reports: store.DefaultRetention.Reports, Syncs: 0, Events: 7}:
		t.Errorf("retention %+v: reports the default, syncs 0 from the environment, events 7 from a drop-in", cfg.Retention)
	case cfg.Listen != ":9200":
		t.Errorf("listen %q: the flag should win", cfg.Listen)
	case cfg.HTTP != "":
		t.Errorf("http %q: off by default", cfg.HTTP)
	case cfg.AgentCertLifetime != 90*24*time.Hour:
		t.Errorf("agent cert lifetime %v: 90d from the environment", cfg.AgentCertLifetime)
	case u == nil || u.URL != "https://flag:8443":
		t.Errorf("upstream %+v: the flag should win, without the trailing slash", u)
	case u.Interval != 48*time.Hour || u.Jitter != 2*time.Minute:
		t.Errorf("interval %v jitter %v: want 2d from the flag and 2m from the environment", u.Interval, u.Jitter)
	case strings.Join(u.Severities, ",") != "critical,important":
		t.Errorf("severities %v: the environment should win", u.Severities)
	case len(cfg.Vendors) != 1 || cfg.Vendors[0] != server.HostedVendor{Name: "example", Dir: "/srv/vendor"}:
		t.Errorf("vendors %+v", cfg.Vendors)
	case len(u.Vendors) != 1 || u.Vendors[0] != server.UpstreamVendor{Name: "example", RootFingerprint: pin}:
		t.Errorf("upstream vendors %+v", u.Vendors)
	case u.Mode != "replica" || u.Token != "bwa_x":
		t.Errorf("mode %q token %q: from the environment", u.Mode, u.Token)
	case cfg.EnrollLimits != server.EnrollLimits{TokenBurst: 5000, TokenRate: 800, FailBurst: 20, FailRate: d.FailRate}:
		t.Errorf("enroll limits %+v: token burst from the file, token rate from the environment, fail burst from the flag, fail rate the default", cfg.EnrollLimits)
	case c.Log.Level != "debug" || c.Log.Format != "text":
		t.Errorf("log %+v: level from the file, format the default", c.Log)
	}
}

// TestServerConfigDefaults: no file, no variables, no flags: the
// documented defaults, and no upstream.
func TestServerConfigDefaults(t *testing.T) {
	c, err := loadServerConfig("", nil, serverFlagSet(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "bulwark-data" || cfg.Listen != ":8443" || cfg.SiteName != "site" || cfg.Upstream != nil ||
		cfg.EnrollLimits != server.DefaultEnrollLimits || *cfg.Retention != store.DefaultRetention ||
		cfg.AgentCertLifetime != 365*24*time.Hour || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Fatalf("defaults: %+v log %+v", cfg, c.Log)
	}
}

// TestServerConfigRefusals: a bad value or an unknown key is refused,
// naming where it came from (file and key, variable, or flag) and what
// would be valid.
func TestServerConfigRefusals(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		args []string
		want []string
	}{
		{"unknown key", "listn: x\n", nil, nil, []string{"t.yaml", "unknown key listn", "listen"}},
		{"unknown nested key", "upstream: {intervall: 1h}\n", nil, nil, []string{"t.yaml", "unknown key upstream.intervall", "interval"}},
		{"unknown key in a vendor", "vendors: [{name: a, dri: /x}]\n", nil, nil, []string{"t.yaml", "vendors", "unknown key dri"}},
		{"wrong type", "hosts: {a: b}\n", nil, nil, []string{"t.yaml", "hosts", "use a list"}},
		{"section not a mapping", "upstream: https://x\n", nil, nil, []string{"t.yaml", "upstream: a string instead of a mapping"}},
		{"bad duration in the file", "upstream: {interval: often}\n", nil, nil, []string{"t.yaml", `upstream.interval "often"`, "90m, 36h or 7d"}},
		{"duration without unit in the file", "retention: {reports: 3600}\n", nil, nil, []string{"t.yaml", "retention.reports", "with its unit"}},
		{"zero burst in the file", "enroll_limits: {fail_burst: 0}\n", nil, nil, []string{"t.yaml", "enroll_limits.fail_burst", "positive count"}},
		{"short certificate lifetime in the file", "agent_cert_lifetime: 10m\n", nil, nil, []string{"t.yaml", "agent_cert_lifetime", "at least 1h"}},
		{"bad log level in the file", "log: {level: loud}\n", nil, nil, []string{"t.yaml", "log.level", "debug, info, warn or error"}},
		{"bad duration in env", "", map[string]string{"BULWARK_SYNC_INTERVAL": "often"}, nil, []string{`BULWARK_SYNC_INTERVAL "often"`, "7d"}},
		{"bad bool in env", "", map[string]string{"BULWARK_METADATA_ONLY": "maybe"}, nil, []string{"BULWARK_METADATA_ONLY", "true or false"}},
		{"bad enrollment rate in env", "", map[string]string{"BULWARK_ENROLL_TOKEN_RATE": "fast"}, nil, []string{"BULWARK_ENROLL_TOKEN_RATE", "number"}},
		{"zero enrollment burst in env", "", map[string]string{"BULWARK_ENROLL_FAIL_BURST": "0"}, nil, []string{"BULWARK_ENROLL_FAIL_BURST", "positive count"}},
		{"vendor without dir in env", "", map[string]string{"BULWARK_VENDOR": "example"}, nil, []string{"BULWARK_VENDOR", "NAME=VALUE"}},
		{"bad log format in env", "", map[string]string{"BULWARK_LOG_FORMAT": "xml"}, nil, []string{"BULWARK_LOG_FORMAT", "text or json"}},
		{"vendor without dir in a flag", "", nil, []string{"--vendor", "example"}, []string{"--vendor", "NAME=VALUE"}},
		{"zero burst in a flag", "", nil, []string{"--enroll-token-burst", "0"}, []string{"--enroll-token-burst", "positive count"}},
		{"bad log level in a flag", "", nil, []string{"--log-level", "loud"}, []string{"--log-level", "debug, info"}},
		{"short certificate lifetime in a flag", "", nil, []string{"--agent-cert-lifetime", "30m"}, []string{"--agent-cert-lifetime", "at least 1h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(t.TempDir(), "t.yaml"), tc.yaml, 0o644)
			_, err := loadServerConfig(p, environ(tc.env), serverFlagSet(t, tc.args...))
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want %q in it", err, w)
				}
			}
		})
	}
}

// A flag of the wrong type is refused by the flag parser, naming the flag.
func TestServerFlagTypes(t *testing.T) {
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	registerServerFlags(fs)
	err := fs.Parse([]string{"--sync-interval", "often"})
	if err == nil || !strings.Contains(err.Error(), "--sync-interval") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzServerConfig: whatever the file holds, loading either fails with an
// error or yields a config the server then validates; it never panics.
func FuzzServerConfig(f *testing.F) {
	f.Add([]byte("data_dir: d\nlisten: \":1\"\nupstream: {url: https://x:1, interval: 1h, vendors: [{name: v, root_fingerprint: x}]}\n"))
	f.Add([]byte("vendors: [{name: a, dir: b}]\nlog: {level: debug}\n"))
	f.Add([]byte("upstream:\n  interval: -1s\n"))
	f.Add([]byte("retention: {reports: 0, events: 3}\nhosts: [a, 1, true]\n"))
	f.Add([]byte("- a\n- b\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadServerConfig(p, nil, nil)
		if err != nil {
			return
		}
		_, _ = c.serverConfig()
	})
}

// Drop-ins (server.yaml.d/*.yaml) merge over the file in lexical order, each
// overriding only the keys it sets; one holding a secret must be private.
func TestServerConfigDropIns(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "server.yaml")
	pin := "sha256:" + strings.Repeat("ab", 32)
	writeFile(t, p, "# ours\nlisten: \":9000\"\nupstream:\n  url: https://hq:8443\n  ca_fingerprint: "+pin+"\n", 0o644)
	writeFile(t, filepath.Join(p+".d", "20-late.yaml"), "listen: \":9002\"\nupstream: {interval: 30m}\n", 0o644)
	writeFile(t, filepath.Join(p+".d", "10-early.yaml"), "listen: \":9001\"\nsite_name: branch\n", 0o644)
	writeFile(t, filepath.Join(p+".d", "notes.txt"), "not read", 0o644)
	c, err := loadServerConfig(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9002" || c.SiteName != "branch" || c.Upstream == nil || c.Upstream.URL != "https://hq:8443" || c.Upstream.Interval != 30*time.Minute {
		t.Fatalf("merged: listen %q site %q upstream %+v", c.Listen, c.SiteName, c.Upstream)
	}
	secret := writeFile(t, filepath.Join(p+".d", "30-token.yaml"), "upstream: {token: bwa_secret}\n", 0o644)
	if _, err := loadServerConfig(p, nil, nil); err == nil || !strings.Contains(err.Error(), "30-token.yaml") || !strings.Contains(err.Error(), "upstream.token") {
		t.Fatalf("a drop-in with a token readable by others: %v", err)
	}
	os.Chmod(secret, 0o600)
	if c, err := loadServerConfig(p, nil, nil); err != nil || c.Upstream.Token != "bwa_secret" {
		t.Fatalf("private token drop-in: %v", err)
	}
	writeFile(t, filepath.Join(p+".d", "40-typo.yaml"), "lisen: x\n", 0o644)
	if _, err := loadServerConfig(p, nil, nil); err == nil || !strings.Contains(err.Error(), "40-typo.yaml") || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("a typo in a drop-in: %v", err)
	}
	if _, err := loadServerConfig(filepath.Join(dir, "missing.yaml"), nil, nil); err == nil {
		t.Fatal("a --config file that does not exist was accepted")
	}
}

// The conffile the bulwark-server package ships loads as it is.
func TestShippedServerConfigLoads(t *testing.T) {
	c, err := loadServerConfig("../../dist/deb/server.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/bulwark-server" {
		t.Fatalf("data dir %q", c.DataDir)
	}
}
