package dist

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// systemdRoot returns a private copy of the Debian 12 root with systemd that
// scripts/setup.d/package.sh prepares. Without it the test fails (it must
// not pass by skipping); -short skips.
func systemdRoot(t testing.TB) string {
	t.Helper()
	src := os.Getenv("BULWARK_TEST_SYSTEMD_ROOT")
	if src == "" {
		if testing.Short() {
			t.Skip("-short: no Debian root")
		}
		t.Fatal("BULWARK_TEST_SYSTEMD_ROOT is not set: run scripts/test, which prepares a Debian 12 root with systemd (scripts/setup.d/package.sh), or set it to such a root (go test -short skips this test)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the package test needs root: it installs the packages with dpkg in a chroot")
	}
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy Debian root: %v: %s", err, out)
	}
	return dst
}

// tool returns the path of a program the test needs; scripts/test installs
// every one of them.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed: run scripts/test (scripts/setup.d/package.sh installs it)", name)
	return ""
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestDebianPackages builds bulwark, bulwark-server and bulwark-agent with
// scripts/package, lints them, installs them with dpkg into a copy of a
// Debian 12 root in a chroot, verifies their units with Debian's systemd,
// measures the server unit's exposure and runs the installed binary inside
// the root, the server as its own system user.
func TestDebianPackages(t *testing.T) {
	root := systemdRoot(t)
	nfpm := tool(t, "nfpm")
	lintian := tool(t, "lintian")
	analyze := tool(t, "systemd-analyze")
	tool(t, "man")

	out := t.TempDir()
	version := "0.1.0~test1"
	built := run(t, "..", []string{"BULWARK_VERSION=" + version, "PATH=" + filepath.Dir(nfpm) + ":" + os.Getenv("PATH")}, "scripts/package", out)
	debs := strings.Fields(built)
	if len(debs) != 3 {
		t.Fatalf("scripts/package made %d packages, want 3:\n%s", len(debs), built)
	}
	contents := map[string]string{}
	for _, d := range debs {
		name := strings.SplitN(filepath.Base(d), "_", 2)[0]
		contents[name] = run(t, "", nil, "dpkg-deb", "--contents", d) + run(t, "", nil, "dpkg-deb", "--info", d)
	}

	t.Run("contents", func(t *testing.T) {
		for _, c := range []struct{ pkg, want string }{
			{"bulwark", "./usr/bin/bulwark"},
			{"bulwark", "./usr/share/man/man1/bulwark.1.gz"},
			{"bulwark", "./usr/share/man/man1/bulwark-agent-run.1.gz"},
			{"bulwark", "./usr/share/man/man1/bulwark-server.1.gz"},
			{"bulwark", "./usr/share/man/man1/bulwark-repo-refresh.1.gz"},
			{"bulwark", "./usr/share/bash-completion/completions/bulwark"},
			{"bulwark", "./usr/share/zsh/vendor-completions/_bulwark"},
			{"bulwark", "./usr/share/fish/vendor_completions.d/bulwark.fish"},
			{"bulwark", "./lib/systemd/system/bulwark-repo-refresh@.timer"},
			{"bulwark-server", "./lib/systemd/system/bulwark-server.service"},
			{"bulwark-server", "./etc/bulwark/server.yaml"},
			{"bulwark-server", "Depends: bulwark (= " + version + ")"},
			{"bulwark-agent", "./lib/systemd/system/bulwark-agent.service"},
			{"bulwark-agent", "./etc/bulwark/agent.yaml"},
			{"bulwark-agent", "./usr/libexec/bulwark/bulwark-agent"},
		} {
			if !strings.Contains(contents[c.pkg], c.want) {
				t.Errorf("%s: no %q in\n%s", c.pkg, c.want, contents[c.pkg])
			}
		}
	})

	t.Run("lintian", func(t *testing.T) {
		// Errors and warnings fail; the overrides in
		// dist/deb/bulwark.lintian-overrides say why each is accepted.
		cmd := exec.Command(lintian, append([]string{"--fail-on", "error,warning", "--tag-display-limit", "0"}, debs...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lintian: %v\n%s", err, b)
		}
	})

	// Install with dpkg inside the root, as an admin would.
	if err := os.MkdirAll(filepath.Join(root, "tmp/debs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var inRoot []string
	for _, d := range debs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		p := "/tmp/debs/" + filepath.Base(d)
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		inRoot = append(inRoot, p)
	}
	run(t, "", nil, "chroot", append([]string{root, "dpkg", "-i"}, inRoot...)...)
	status := run(t, "", nil, "chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Status}\n", "bulwark", "bulwark-server", "bulwark-agent")
	if strings.Count(status, "install ok installed") != 3 {
		t.Fatalf("after dpkg -i:\n%s", status)
	}

	t.Run("users and conffiles", func(t *testing.T) {
		passwd := run(t, "", nil, "chroot", root, "getent", "passwd", "bulwark-server")
		if !strings.Contains(passwd, ":/var/lib/bulwark-server:/usr/sbin/nologin") {
			t.Errorf("system user: %q", passwd)
		}
		if uid, _ := strconv.Atoi(strings.Split(passwd, ":")[2]); uid == 0 || uid >= 1000 {
			t.Errorf("bulwark-server has uid %d, want a system uid", uid)
		}
		run(t, "", nil, "chroot", root, "getent", "group", "bulwark")
		for pkg, conf := range map[string]string{"bulwark-server": "/etc/bulwark/server.yaml", "bulwark-agent": "/etc/bulwark/agent.yaml"} {
			b, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info", pkg+".conffiles"))
			if err != nil || !strings.Contains(string(b), conf) {
				t.Errorf("%s conffiles: %q, %v; want %s", pkg, b, err, conf)
			}
		}
		// An admin's change to a conffile survives reinstalling.
		agentConf := filepath.Join(root, "etc/bulwark/agent.yaml")
		if err := os.WriteFile(agentConf, []byte("mode: notify\nreboot_command: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "", nil, "chroot", append([]string{root, "dpkg", "--force-confold", "-i"}, inRoot...)...)
		if b, _ := os.ReadFile(agentConf); string(b) != "mode: notify\nreboot_command: []\n" {
			t.Errorf("reinstall changed the admin's agent.yaml:\n%s", b)
		}
		// The units are enabled the way dh_installsystemd does it.
		for _, u := range []string{"bulwark-server.service", "bulwark-agent.service"} {
			if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u)); err != nil {
				t.Errorf("%s not enabled: %v", u, err)
			}
		}
	})

	units := []string{
		"/lib/systemd/system/bulwark-server.service",
		"/lib/systemd/system/bulwark-agent.service",
		"/lib/systemd/system/bulwark-repo-refresh@.service",
		"/lib/systemd/system/bulwark-repo-refresh@.timer",
	}
	// systemd-analyze checks Documentation=man: links with man(1).
	manEnv := []string{"MANPATH=" + filepath.Join(root, "usr/share/man")}
	t.Run("systemd-analyze verify", func(t *testing.T) {
		run(t, root, manEnv, analyze, append([]string{"verify", "--root=" + root}, units...)...)
		// The check bites: a unit pointing at a man page nobody ships (the
		// agent unit before the packages) fails.
		bad := filepath.Join(root, "etc/systemd/system/bulwark-bad.service")
		b, _ := os.ReadFile(filepath.Join(root, units[1]))
		b = bytes.Replace(b, []byte("man:bulwark-agent-run(1)"), []byte("man:bulwark-missing(1)"), 1)
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(analyze, "verify", "--root="+root, "/etc/systemd/system/bulwark-bad.service")
		cmd.Dir, cmd.Env = root, append(os.Environ(), manEnv...)
		if b, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("verify accepted a unit whose man page does not exist:\n%s", b)
		}
		os.Remove(bad)
	})

	exposure := func(t *testing.T, unit string, max float64) {
		b, _ := exec.Command(analyze, "security", "--offline=yes", "--no-pager", "--root="+root, unit).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: ([0-9.]+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", b)
		}
		level, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("systemd-analyze security %s: %.1f", unit, level)
		if level > max {
			t.Errorf("%s exposure %.1f, want at most %.1f:\n%s", unit, level, max, b)
		}
	}
	t.Run("server exposure", func(t *testing.T) { exposure(t, "bulwark-server.service", 2.0) })
	// The agent installs packages as root (the unit says what cannot be
	// restricted and why); this holds the sandboxing it has.
	t.Run("agent exposure", func(t *testing.T) { exposure(t, "bulwark-agent.service", 7.3) })

	t.Run("binary runs in the root", func(t *testing.T) {
		if v := run(t, "", nil, "chroot", root, "/usr/bin/bulwark", "--version"); !strings.Contains(v, version) {
			t.Errorf("bulwark --version: %q, want %s", v, version)
		}
		// The lean agent the unit runs: the agent's commands, nothing else.
		if v := run(t, "", nil, "chroot", root, "/usr/libexec/bulwark/bulwark-agent", "--version"); !strings.Contains(v, version) {
			t.Errorf("bulwark-agent --version: %q, want %s", v, version)
		}
		if h := run(t, "", nil, "chroot", root, "/usr/libexec/bulwark/bulwark-agent", "run", "--help"); !strings.Contains(h, "--once") {
			t.Errorf("bulwark-agent run --help:\n%s", h)
		}
		if b, err := exec.Command("chroot", root, "/usr/libexec/bulwark/bulwark-agent", "server").CombinedOutput(); err == nil {
			t.Errorf("bulwark-agent server ran; the lean build must not have the server:\n%s", b)
		}
		// The vendor tool inside the root: init, then what the timer runs.
		run(t, "", nil, "chroot", root, "/usr/bin/bulwark", "repo", "init", "/srv/vendor", "--name", "example")
		run(t, "", nil, "chroot", root, "/usr/bin/bulwark", "repo", "refresh", "/srv/vendor")
		run(t, "", nil, "chroot", root, "/usr/bin/bulwark", "repo", "verify", "/srv/vendor")
		// The server as its system user with the packaged configuration;
		// systemd would make the state directory (StateDirectory=).
		run(t, "", nil, "chroot", root, "install", "-d", "-o", "bulwark-server", "-g", "bulwark-server", "-m", "0700", "/var/lib/bulwark-server")
		cmd := exec.Command("chroot", "--userspec=bulwark-server:bulwark-server", root,
			"/usr/bin/bulwark", "server", "--config", "/etc/bulwark/server.yaml", "--listen", "127.0.0.1:0")
		var log lockedBuffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(log.String(), "Ready.") {
			if time.Now().After(deadline) {
				t.Fatalf("server in the root did not become ready:\n%s", log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		fi, err := os.Stat(filepath.Join(root, "var/lib/bulwark-server/site"))
		if err != nil {
			t.Fatalf("server made no site repository: %v\n%s", err, log.String())
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("site repository mode %v, want no access for others", fi.Mode())
		}
	})

	t.Run("remove and purge", func(t *testing.T) {
		run(t, "", nil, "chroot", root, "dpkg", "--purge", "bulwark-agent", "bulwark-server", "bulwark")
		if _, err := os.Stat(filepath.Join(root, "usr/bin/bulwark")); err == nil {
			t.Error("/usr/bin/bulwark left after purge")
		}
		// Purging keeps the site's keys and history.
		if _, err := os.Stat(filepath.Join(root, "var/lib/bulwark-server/site")); err != nil {
			t.Errorf("purge removed the data directory: %v", err)
		}
	})
}

// lockedBuffer is a bytes.Buffer that a running command writes to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
