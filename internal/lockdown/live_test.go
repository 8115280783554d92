package lockdown

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProber stands for the running system's values in force: the tests
// must not change the machine they run on, so the kernel, sshd and systemd
// are a map here. Files are real.
type fakeProber struct {
	sshd    map[string]string
	sysctl  map[string]string
	units   map[string]string
	modules map[string]bool
	mounts  map[string][]string
}

func (p *fakeProber) SSHD(context.Context) (map[string]string, error) { return p.sshd, nil }
func (p *fakeProber) Sysctl(_ context.Context, key string) (string, error) {
	v, ok := p.sysctl[key]
	if !ok {
		return "", fs.ErrNotExist
	}
	return v, nil
}
func (p *fakeProber) UnitState(_ context.Context, unit string) (string, error) {
	if s, ok := p.units[unit]; ok {
		return s, nil
	}
	return "not-found", nil
}
func (p *fakeProber) ModuleLoaded(_ context.Context, name string) (bool, error) {
	return p.modules[name], nil
}
func (p *fakeProber) Mounts(context.Context) (map[string][]string, error) { return p.mounts, nil }

// recordingCommander records the commands the engine would run on the
// running system instead of running them (systemctl and sysctl -w would
// change this machine).
type recordingCommander struct {
	mu   sync.Mutex
	runs []string
	fail map[string]error
}

func (c *recordingCommander) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := strings.Join(append([]string{name}, args...), " ")
	c.runs = append(c.runs, line)
	for prefix, err := range c.fail {
		if strings.HasPrefix(line, prefix) {
			return nil, err
		}
	}
	return nil, nil
}

func (c *recordingCommander) ran(t testing.TB, want string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.runs {
		if r == want {
			return
		}
	}
	t.Errorf("did not run %q; ran:\n  %s", want, strings.Join(c.runs, "\n  "))
}

const liveRules = `rules:
  - id: live-sysctl
    title: ip forwarding off
    rationale: r
    severity: medium
    profiles: [live]
    disruption: low
    reload: sysctl
    resource: {type: sysctl, key: net.ipv4.ip_forward, value: "0", default: "0"}
  - id: live-sshd
    title: no root login
    rationale: r
    severity: high
    profiles: [live]
    disruption: low
    reload: ssh
    resource: {type: sshd_option, option: PermitRootLogin, value: "no", default: prohibit-password}
  - id: live-unit
    title: cups masked
    rationale: r
    severity: medium
    profiles: [live]
    disruption: low
    reload: systemd
    resource: {type: service, unit: cups.service, state: masked}
  - id: live-module
    title: cramfs off
    rationale: r
    severity: low
    profiles: [live]
    disruption: low
    reboot: true
    resource: {type: kernel_module, module: cramfs}
profiles:
  - name: live
    title: live
`

// TestLiveApplyAndUndo runs apply and undo on a scratch root treated as the
// running system: values in force come from the prober, sshd -t runs
// without chroot, the kernel value and the services are reloaded, and undo
// writes the prior kernel value back and starts the stopped unit.
func TestLiveApplyAndUndo(t *testing.T) {
	root := miniRoot(t, map[string]string{
		"/etc/ssh/sshd_config":                              "Include /etc/ssh/sshd_config.d/*.conf\n",
		"/lib/systemd/system/cups.service":                  "[Unit]\n",
		"/etc/systemd/system/multi-user.target.wants/.keep": "",
	})
	if err := symlink(root, "/lib/systemd/system/cups.service", "/etc/systemd/system/multi-user.target.wants/cups.service"); err != nil {
		t.Fatal(err)
	}
	orig := snapshot(t, root)
	p := &fakeProber{
		sshd:    map[string]string{"permitrootlogin": "yes"},
		sysctl:  map[string]string{"net.ipv4.ip_forward": "1"},
		units:   map[string]string{"cups.service": "enabled"},
		modules: map[string]bool{"cramfs": true},
	}
	cmd := &recordingCommander{}
	c := NewCatalog(ResourceTypes())
	if err := c.Parse("live.yaml", []byte(liveRules)); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(slog.New(slog.NewTextHandler(testWriter{t}, nil)), func() time.Time { return fixedNow }, cmd, WithLiveRoot(root, p))
	sel := selectProfile(t, c, "live")

	rep, err := e.Audit(context.Background(), sel, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Result != ResultFail {
			t.Errorf("%s: %s (%s from %s), want fail from the value in force", r.ID, r.Result, r.Actual, r.Where)
		}
		if r.ID == "live-sysctl" && r.Where != "/proc/sys" || r.ID == "live-sshd" && r.Where != "sshd -T" {
			t.Errorf("%s read from %q", r.ID, r.Where)
		}
	}

	state := t.TempDir()
	if _, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	cmd.ran(t, "/usr/sbin/sshd -t")
	cmd.ran(t, "sysctl -q -p "+root+sysctlDropIn)
	cmd.ran(t, "systemctl daemon-reload")
	cmd.ran(t, "systemctl stop cups.service")
	cmd.ran(t, "systemctl reload ssh")
	runs, err := e.Runs(state)
	if err != nil || len(runs) != 1 || runs[0].Sysctls["net.ipv4.ip_forward"] != "1" || len(runs[0].Units) != 1 {
		t.Fatalf("run record %+v, %v: want the prior ip_forward and the stopped unit", runs, err)
	}

	if _, err := e.Undo(context.Background(), state, "", false); err != nil {
		t.Fatal(err)
	}
	cmd.ran(t, "sysctl -q -w net.ipv4.ip_forward=1")
	cmd.ran(t, "systemctl start cups.service")
	cmd.ran(t, "systemctl reload-or-restart ssh")
	diffSnapshots(t, orig, snapshot(t, root))
}

// TestLiveValidationFailureRollsBack: sshd -t failing on the running system
// leaves every file as it was and reloads nothing.
func TestLiveValidationFailureRollsBack(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/ssh/sshd_config": "PermitRootLogin yes\n"})
	orig := snapshot(t, root)
	cmd := &recordingCommander{fail: map[string]error{"/usr/sbin/sshd -t": errors.New("line 1: Bad configuration option")}}
	c := NewCatalog(ResourceTypes())
	if err := c.Parse("live.yaml", []byte(liveRules)); err != nil {
		t.Fatal(err)
	}
	p := &fakeProber{sshd: map[string]string{"permitrootlogin": "yes"}, sysctl: map[string]string{"net.ipv4.ip_forward": "0"}}
	e := NewEngine(slog.New(slog.NewTextHandler(testWriter{t}, nil)), func() time.Time { return fixedNow }, cmd, WithLiveRoot(root, p))
	_, err := e.Apply(context.Background(), selectProfile(t, c, "live"), root, ApplyOptions{StateDir: t.TempDir()})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("apply: %v, want ValidationError", err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	for _, r := range cmd.runs {
		if strings.HasPrefix(r, "systemctl") || strings.HasPrefix(r, "sysctl") {
			t.Errorf("ran %q after a failed validation", r)
		}
	}
}

func symlink(root, target, link string) error {
	return os.Symlink(target, root+link)
}
