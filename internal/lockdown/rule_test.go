package lockdown

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/lockdown/rules"
)

const goodRule = `rules:
  - id: test-umask
    title: umask
    rationale: because
    severity: medium
    profiles: [test]
    disruption: low
    resource: {type: file_kv, path: /etc/login.defs, key: UMASK, value: "027", units: octal, default: "022"}
profiles:
  - name: test
    title: test
`

// TestParseRefusesBadFiles: every bad rule file is refused with the file,
// the line and the field at fault.
func TestParseRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       string // ":N:" expected in the error
		field      string
		is         error
	}{
		{"unknown top-level field", "rule:\n  - id: x\n", ":1:", `field "rule"`, ErrUnknownField},
		{"unknown rule field", strings.Replace(goodRule, "    disruption: low\n", "    disruption: low\n    sevrity: high\n", 1), ":8:", `field "sevrity"`, ErrUnknownField},
		{"unknown resource parameter", strings.Replace(goodRule, "key: UMASK", "key: UMASK, kee: x", 1), ":8:", `field "resource.kee"`, ErrUnknownField},
		{"unknown resource type", strings.Replace(goodRule, "type: file_kv", "type: registry_key", 1), ":8:", `field "resource.type"`, ErrUnknownType},
		{"unknown profile field", goodRule + "    extend: sysadmin\n", ":12:", `field "extend"`, ErrUnknownField},
		{"bad severity", strings.Replace(goodRule, "severity: medium", "severity: urgent", 1), ":5:", `field "severity"`, nil},
		{"bad disruption", strings.Replace(goodRule, "disruption: low", "disruption: none", 1), ":7:", `field "disruption"`, nil},
		{"bad id", strings.Replace(goodRule, "id: test-umask", "id: ../etc", 1), ":2:", `field "id"`, nil},
		{"value that fails its own check", strings.Replace(goodRule, `value: "027"`, `value: "027", allowed: ["077"]`, 1), ":8:", `field "resource"`, nil},
		{"file mode not octal", strings.Replace(goodRule, `{type: file_kv, path: /etc/login.defs, key: UMASK, value: "027", units: octal, default: "022"}`, `{type: file_mode, path: /etc/shadow, mode: "rw-r-----"}`, 1), ":8:", `field "resource"`, nil},
		{"relative path", strings.Replace(goodRule, "path: /etc/login.defs", "path: etc/login.defs", 1), ":8:", `field "resource"`, nil},
		{"undefined variable", strings.Replace(goodRule, `value: "027"`, `value: "{{nope}}"`, 1), ":8:", `field "resource"`, nil},
		{"waiver without reason", goodRule + "    waivers: [{rule: test-umask, expires: 2027-01-01}]\n", ":12:", `field "waivers.reason"`, nil},
		{"waiver with bad date", goodRule + "    waivers: [{rule: test-umask, reason: r, expires: next year}]\n", ":12:", `field "waivers.expires"`, nil},
		{"not YAML", "rules: [\n", ":", "", nil},
		{"wrong shape", "rules: {id: x}\n", ":1:", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCatalog(ResourceTypes())
			err := c.Parse("custom.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "custom.yaml"+tt.line) || !strings.Contains(msg, tt.field) {
				t.Errorf("error %q, want file custom.yaml, line %q and %s", msg, tt.line, tt.field)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if len(c.Rules()) != 0 {
				t.Errorf("a refused file added rules")
			}
		})
	}
	if err := NewCatalog(ResourceTypes()).Parse("custom.yaml", []byte(goodRule)); err != nil {
		t.Fatalf("the good rule is refused: %v", err)
	}
}

func FuzzParseRules(f *testing.F) {
	names, _ := rules.FS.ReadDir(".")
	for _, n := range names {
		b, _ := rules.FS.ReadFile(n.Name())
		f.Add(b)
	}
	f.Add([]byte(goodRule))
	f.Add([]byte("rules: [{resource: {type: nginx, methods: [GET]}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewCatalog(ResourceTypes())
		if err := c.Parse("fuzz.yaml", data); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			return
		}
		for _, p := range c.Profiles() {
			_, _ = c.Select(p.Name, fixedNow)
		}
	})
}

// miniRoot writes files into a fresh root.
func miniRoot(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		hp := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestWaivers(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	c := NewCatalog(ResourceTypes())
	err := c.Parse("w.yaml", []byte(goodRule+`  - name: waived
    title: waived
    extends: test
    waivers: [{rule: test-umask, reason: "legacy app needs 022", expires: 2026-12-31}]
  - name: expired
    title: expired
    extends: test
    waivers: [{rule: test-umask, reason: "was needed last year", expires: 2026-11-21}]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t)
	for _, tt := range []struct {
		profile string
		failed  int
		waived  bool
	}{
		{"test", 1, false},
		{"waived", 0, true},
		{"expired", 1, false}, // expired the day before fixedNow: ignored
	} {
		sel := selectProfile(t, c, tt.profile)
		rep, err := e.Audit(context.Background(), sel, root)
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if rep.Failed() != tt.failed || (r.Waiver != nil) != tt.waived {
			t.Errorf("%s: failed %d waived %v, want %d %v", tt.profile, rep.Failed(), r.Waiver != nil, tt.failed, tt.waived)
		}
		if tt.profile == "expired" && r.ExpiredWaiver == nil {
			t.Errorf("expired waiver not reported")
		}
		if tt.waived && rep.Score != 100 {
			t.Errorf("waived failure scores %.1f, want 100", rep.Score)
		}
		// Counted as waived everywhere: JSON counts and the text summary.
		wantCounts := map[Result]int{ResultFail: 1}
		wantSummary := "1 rules: 1 fail;"
		if tt.waived {
			wantCounts = map[Result]int{ResultWaived: 1}
			wantSummary = "1 rules: 1 waived;"
		}
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var back struct{ Counts map[Result]int }
		if err := json.Unmarshal(js, &back); err != nil || !maps.Equal(back.Counts, wantCounts) {
			t.Errorf("%s: JSON counts %v (%v), want %v", tt.profile, back.Counts, err, wantCounts)
		}
		var text strings.Builder
		if err := WriteReport(&text, rep, "text"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), wantSummary) {
			t.Errorf("%s: text summary lacks %q:\n%s", tt.profile, wantSummary, text.String())
		}
		// A waived rule is not applied.
		ap, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: t.TempDir(), DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if tt.waived != (len(ap.Changes) == 0) {
			t.Errorf("%s: dry run plans %d changes", tt.profile, len(ap.Changes))
		}
	}
	// On the expiry day itself the waiver still holds.
	sel, err := c.Select("waived", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC))
	if err != nil || sel.Rules[0].Waiver == nil {
		t.Errorf("waiver not in force on its expiry day: %v", err)
	}
}

func TestProfileVarsAndExclude(t *testing.T) {
	c := testCatalog(t)
	err := c.Parse("custom.yaml", []byte(`profiles:
  - name: custom
    title: custom
    extends: small-business
    exclude: [ssh-permit-root-login]
    vars: {ssh_max_auth_tries: "3"}
`))
	if err != nil {
		t.Fatal(err)
	}
	sel := selectProfile(t, c, "custom")
	for _, s := range sel.Rules {
		switch s.Rule.ID {
		case "ssh-permit-root-login":
			t.Error("excluded rule selected")
		case "ssh-max-auth-tries":
			if got := s.Resource.(*SSHDOption).Value; got != "3" {
				t.Errorf("MaxAuthTries value %q, want the profile's 3", got)
			}
		}
	}
	for _, bad := range []string{
		"profiles: [{name: p, title: t, vars: {no_such_var: x}}]",
		"profiles: [{name: p, title: t, exclude: [no-such-rule]}]",
		"profiles: [{name: p, title: t, extends: no-such-profile}]",
		"profiles: [{name: p, title: t, extends: q}, {name: q, title: t, extends: p}]",
	} {
		c := testCatalog(t)
		if err := c.Parse("bad.yaml", []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("p", fixedNow); err == nil {
			t.Errorf("profile %s accepted", bad)
		}
	}
}

// TestSymlinkEscape: an image whose config directory is an absolute symlink
// must not make lockdown write to the machine it runs on.
func TestSymlinkEscape(t *testing.T) {
	outside := t.TempDir() // stands for the host's own directory
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	if err := os.Symlink(outside, filepath.Join(root, "etc/security")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x"), filepath.Join(root, "etc/sysctl.d")); err != nil {
		t.Fatal(err)
	}
	c := testCatalog(t)
	e := testEngine(t)
	sel := selectProfile(t, c, "small-business")
	if _, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("apply wrote %d entries outside the root, in %s", len(ents), outside)
	}
	if _, err := os.Stat(filepath.Join(root, outside, "limits.d/bulwark-lockdown.conf")); err != nil {
		t.Errorf("the limits drop-in is not where the link points inside the root: %v", err)
	}
}

func TestReportFormats(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\nPASS_MAX_DAYS 90\n"})
	c := testCatalog(t)
	rep, err := testEngine(t).Audit(context.Background(), selectProfile(t, c, "small-business"), root)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteReport(&sb, rep, "json"); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(sb.String()), &back); err != nil || len(back.Results) != len(rep.Results) || back.Score != rep.Score {
		t.Errorf("json does not round-trip: %v", err)
	}
	sb.Reset()
	if err := WriteReport(&sb, rep, "junit"); err != nil {
		t.Fatal(err)
	}
	var ju junitSuites
	if err := xml.Unmarshal([]byte(sb.String()), &ju); err != nil {
		t.Fatal(err)
	}
	if ju.Suites[0].Failures != rep.Counts[ResultFail] || ju.Suites[0].Tests != len(rep.Results) {
		t.Errorf("junit failures %d tests %d, report %v", ju.Suites[0].Failures, ju.Suites[0].Tests, rep.Counts)
	}
	sb.Reset()
	if err := WriteReport(&sb, rep, "html"); err != nil {
		t.Fatal(err)
	}
	html := sb.String()
	for _, forbidden := range []string{"<script", "http://", "https://", "<link", "@import", "src="} {
		if strings.Contains(html, forbidden) {
			t.Errorf("html report has %q: it must read offline", forbidden)
		}
	}
	if !strings.Contains(html, "login-umask") || !strings.Contains(html, `class="r fail"`) {
		t.Error("html report lacks the failing rule")
	}
	sb.Reset()
	if err := WriteReport(&sb, rep, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "found 022 (/etc/login.defs:1), want one of 027, 077") {
		t.Errorf("text report does not say what was found where:\n%s", sb.String())
	}
	if err := WriteReport(&sb, rep, "pdf"); err == nil || !strings.Contains(err.Error(), "text, json, html, junit") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	got := unifiedDiff("/etc/x", []byte("a\nb\nc\nd\ne\nf\ng\nh\n"), []byte("a\nb\nc\nD\ne\nf\ng\nh\n"), true)
	want := "--- a/etc/x\n+++ b/etc/x\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}

func TestExpect(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		e      Expect
		actual string
		ok     bool
	}{
		{"equal ignores case", Expect{Value: "no"}, "No", true},
		{"different", Expect{Value: "no"}, "yes", false},
		{"time in minutes", Expect{Value: "60", Max: f(60), Units: "time"}, "1m", true},
		{"time too long", Expect{Value: "60", Max: f(60), Units: "time"}, "2m", false},
		{"size", Expect{Value: "1m", Max: f(10 << 20), Units: "size"}, "100m", false},
		{"octal", Expect{Value: "027", Units: "octal"}, "0027", true},
		{"not a number", Expect{Value: "4", Max: f(4)}, "four", false},
		{"allowed", Expect{Value: "VERBOSE", Allowed: []string{"INFO", "VERBOSE"}}, "info", true},
	}
	for _, tt := range tests {
		if got := tt.e.OK(tt.actual); got != tt.ok {
			t.Errorf("%s: OK(%q) = %v", tt.name, tt.actual, got)
		}
	}
}

func FuzzNginxConfig(f *testing.F) {
	f.Add("http { server_tokens off; server { listen 80; if ($request_method !~ ^(GET)$) { return 405; } } }")
	f.Add("events {}\nhttp {\n include mime.types;\n ssl_protocols 'TLSv1.2';\n}")
	f.Add("a \"unterminated")
	f.Fuzz(func(t *testing.T, conf string) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc/nginx"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/nginx/nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		tree, err := NewTree(root)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = parseNginx(tree)
	})
}

func FuzzSSHDConfig(f *testing.F) {
	f.Add("Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nMatch User x\n PermitRootLogin no\n")
	f.Add("Port=22\nLoginGraceTime \"2m\"\n")
	f.Fuzz(func(t *testing.T, conf string) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc/ssh/sshd_config.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		tree, err := NewTree(root)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = sshdSettings(tree)
	})
}
