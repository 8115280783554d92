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
)

// TestServerConfigPrecedence: defaults < file < BULWARK_* < flags.
func TestServerConfigPrecedence(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	file := []byte(`data_dir: /file/data
listen: ":9000"
vendors: [{name: example, dir: /srv/vendor}]
upstream:
  url: https://file:8443
  ca_fingerprint: ` + pin + `
  vendors: [{name: example, root_fingerprint: ` + pin + `}]
  interval: 30m
  severities: [critical]
log: {level: debug}
enroll_limits: {token_burst: 5000}
`)
	c := &serverFileConfig{DataDir: "bulwark-data", Listen: ":8443"}
	c.Log.Level, c.Log.Format = "info", "text"
	c, err := parseServerConfig("test.yaml", file, c)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BULWARK_LISTEN": ":9100", "BULWARK_SYNC_JITTER": "2m", "BULWARK_SEVERITY": "critical, important",
		"BULWARK_UPSTREAM_MODE": "replica", "BULWARK_UPSTREAM_TOKEN": "bwa_x",
		"BULWARK_DATABASE": "postgres://bulwark@db/bulwark", "BULWARK_RETAIN_SYNCS": "0",
		"BULWARK_ENROLL_TOKEN_RATE": "800"}
	if err := c.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	if err := fs.Parse([]string{"--listen", ":9200", "--upstream", "https://flag:8443/", "--enroll-fail-burst", "20"}); err != nil {
		t.Fatal(err)
	}
	if err := c.applyFlags(fs, &sf); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstream
	switch {
	case cfg.DataDir != "/file/data":
		t.Errorf("data dir %q: the file's value should stand", cfg.DataDir)
	case cfg.Database != "postgres://bulwark@db/bulwark":
		t.Errorf("database %q: the environment should set it", cfg.Database)
	case cfg.Retention == nil || cfg.Retention.Syncs != 0 || cfg.Retention.Reports != 720*time.Hour:
		t.Errorf("retention %+v: syncs 0 from the environment, reports the default", cfg.Retention)
	case cfg.Listen != ":9200":
		t.Errorf("listen %q: the flag should win", cfg.Listen)
	case u == nil || u.URL != "https://flag:8443":
		t.Errorf("upstream %+v: the flag should win, without the trailing slash", u)
	case u.Interval != 30*time.Minute || u.Jitter != 2*time.Minute:
		t.Errorf("interval %v jitter %v: want 30m from the file and 2m from the environment", u.Interval, u.Jitter)
	case strings.Join(u.Severities, ",") != "critical,important":
		t.Errorf("severities %v: the environment should win", u.Severities)
	case len(cfg.Vendors) != 1 || cfg.Vendors[0].Dir != "/srv/vendor":
		t.Errorf("vendors %+v", cfg.Vendors)
	case u.Mode != "replica" || u.Token != "bwa_x":
		t.Errorf("mode %q token %q: from the environment", u.Mode, u.Token)
	case cfg.EnrollLimits != server.EnrollLimits{TokenBurst: 5000, TokenRate: 800, FailBurst: 20}:
		t.Errorf("enroll limits %+v: token burst from the file, token rate from the environment, fail burst from the flag", cfg.EnrollLimits)
	case c.Log.Level != "debug":
		t.Errorf("log level %q", c.Log.Level)
	}
}

func TestServerConfigRefusals(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"unknown key", "listn: x\n", nil, "field listn not found"},
		{"wrong type", "hosts: 3\n", nil, "cannot unmarshal"},
		{"bad duration in env", "", map[string]string{"BULWARK_SYNC_INTERVAL": "often"}, "BULWARK_SYNC_INTERVAL"},
		{"bad bool in env", "", map[string]string{"BULWARK_METADATA_ONLY": "maybe"}, "BULWARK_METADATA_ONLY"},
		{"bad enrollment rate in env", "", map[string]string{"BULWARK_ENROLL_TOKEN_RATE": "fast"}, "BULWARK_ENROLL_TOKEN_RATE"},
		{"zero enrollment burst in env", "", map[string]string{"BULWARK_ENROLL_FAIL_BURST": "0"}, "positive count"},
		{"vendor without dir in env", "", map[string]string{"BULWARK_VENDOR": "example"}, "NAME=VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServerConfig("t.yaml", []byte(tc.yaml), &serverFileConfig{})
			if err == nil {
				err = c.applyEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzServerConfig: whatever the file holds, parsing either fails with an
// error or yields a config the server then validates; it never panics.
func FuzzServerConfig(f *testing.F) {
	f.Add([]byte("data_dir: d\nlisten: \":1\"\nupstream: {url: https://x:1, interval: 1h, vendors: [{name: v, root_fingerprint: x}]}\n"))
	f.Add([]byte("vendors: [{name: a, dir: b}]\nlog: {level: debug}\n"))
	f.Add([]byte("upstream:\n  interval: -1s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseServerConfig("fuzz.yaml", data, &serverFileConfig{})
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
	os.WriteFile(p, []byte("# ours\nlisten: \":9000\"\nupstream:\n  url: https://hq:8443\n  ca_fingerprint: "+pin+"\n"), 0o644)
	os.MkdirAll(p+".d", 0o755)
	os.WriteFile(filepath.Join(p+".d", "20-late.yaml"), []byte("listen: \":9002\"\nupstream: {interval: 30m}\n"), 0o644)
	os.WriteFile(filepath.Join(p+".d", "10-early.yaml"), []byte("listen: \":9001\"\nsite_name: branch\n"), 0o644)
	os.WriteFile(filepath.Join(p+".d", "notes.txt"), []byte("not read"), 0o644)
	c, err := loadServerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9002" || c.SiteName != "branch" || c.Upstream == nil || c.Upstream.URL != "https://hq:8443" || c.Upstream.Interval != 30*time.Minute {
		t.Fatalf("merged: listen %q site %q upstream %+v", c.Listen, c.SiteName, c.Upstream)
	}
	secret := filepath.Join(p+".d", "30-token.yaml")
	os.WriteFile(secret, []byte("upstream: {token: bwa_secret}\n"), 0o644)
	if _, err := loadServerConfig(p); err == nil || !strings.Contains(err.Error(), "30-token.yaml") {
		t.Fatalf("a drop-in with a token readable by others: %v", err)
	}
	os.Chmod(secret, 0o600)
	if c, err := loadServerConfig(p); err != nil || c.Upstream.Token != "bwa_secret" {
		t.Fatalf("private token drop-in: %v", err)
	}
	os.WriteFile(filepath.Join(p+".d", "40-typo.yaml"), []byte("lisen: x\n"), 0o644)
	if _, err := loadServerConfig(p); err == nil || !strings.Contains(err.Error(), "40-typo.yaml") {
		t.Fatalf("a typo in a drop-in: %v", err)
	}
}
