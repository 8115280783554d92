package lockdown

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// timelogRoot returns a private copy of the Debian 12 root with chrony and
// logrotate that scripts/setup.d/lockdown.sh builds (their statoverrides
// keep them out of the shared root, see there).
func timelogRoot(t testing.TB) string {
	t.Helper()
	src := requireEnv(t, "BULWARK_TEST_TIMELOG_ROOT", "run scripts/test, which builds a Debian 12 root with chrony and logrotate, or set it to such a root")
	if os.Geteuid() != 0 {
		t.Fatal("the Debian root tests need root: chroot validation is part of what they check")
	}
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy Debian root: %v: %s", err, out)
	}
	return dst
}

// TestDebianRootTimeAndLog: the time and log rules against the real
// chrony, logrotate and rsyslog packages' own configuration: they apply
// where each package keeps its file, chronyd and logrotate accept what was
// written (chrooted: chronyd -p prints the configuration it would run
// with, logrotate -d dry-runs), OpenSCAP evaluates the SSG rules they cite
// that its Debian 12 content has, and undo restores every file.
func TestDebianRootTimeAndLog(t *testing.T) {
	root := timelogRoot(t)
	ctx := context.Background()
	c := testCatalog(t)
	y := "profiles:\n  - name: timelog\n    title: t\n    include: [chrony-user, logrotate-daily, logrotate-retention, rsyslog-file-create-mode]\n"
	if err := c.Parse("timelog.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	sel := selectProfile(t, c, "timelog")
	e := testEngine(t)
	orig := snapshot(t, root)
	before, err := e.Audit(ctx, sel, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range before.Results {
		if r.Result == ResultNotApplicable || r.Result == ResultError {
			t.Errorf("before: %s is %s (%s): the root lacks the package it is about", r.ID, r.Result, r.Detail)
		}
	}
	state := t.TempDir()
	rep, err := e.Apply(ctx, sel, root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.Audit(ctx, sel, root)
	if err != nil {
		t.Fatal(err)
	}
	cited := map[string][]string{}
	for _, r := range after.Results {
		if r.Result != ResultPass || r.Implicit {
			t.Errorf("after apply: %s is %s (implicit %v)", r.ID, r.Result, r.Implicit)
		}
		for _, id := range r.References.SSG {
			cited[id] = append(cited[id], r.ID)
		}
	}
	if out, err := chrootRun(t, root, "", "chronyd", "-p", "-f", "/etc/chrony/chrony.conf"); err != nil || !strings.Contains(out, "user _chrony") {
		t.Errorf("chronyd -p in the root: %v\n%s", err, out)
	}
	if out, err := chrootRun(t, root, "", "logrotate", "-d", "/etc/logrotate.conf"); err != nil {
		t.Errorf("logrotate -d in the root: %v\n%s", err, out)
	}
	if out, err := chrootRun(t, root, "", "rsyslogd", "-N1", "-f", "/etc/rsyslog.conf"); err != nil {
		t.Errorf("rsyslogd -N1 in the root: %v\n%s", err, out)
	}
	if ds := os.Getenv("BULWARK_TEST_SSG_DS"); ds != "" {
		oscap, err := exec.LookPath("oscap")
		if err != nil {
			t.Fatal("oscap is not installed: scripts/setup.d/openscap.sh installs openscap-scanner")
		}
		results := runOSCAP(t, oscap, ds, root, cited)
		evaluated := 0
		for id, rules := range cited {
			res, ok := results[id]
			if !ok {
				t.Logf("%s (cited by %s) is not in SSG's Debian 12 content", id, strings.Join(rules, ", "))
				continue
			}
			evaluated++
			if res != "pass" {
				t.Errorf("OpenSCAP: %s (cited by %s) is %s after apply", id, strings.Join(rules, ", "), res)
			}
		}
		if evaluated == 0 {
			t.Error("OpenSCAP evaluated none of the SSG rules the time and log rules cite")
		}
	} else {
		requireEnv(t, "BULWARK_TEST_SSG_DS", "run scripts/test, whose scripts/setup.d/openscap.sh unpacks the SSG Debian 12 datastream")
	}
	if _, err := e.Undo(ctx, state, rep.Run, false); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
}
