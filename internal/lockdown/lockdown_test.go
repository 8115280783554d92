package lockdown

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debianRoot returns a private copy of the real Debian 12 root that
// scripts/setup.d/lockdown.sh builds with debootstrap. Without it the test
// fails (it must not pass by skipping); -short skips.
func debianRoot(t testing.TB) string {
	t.Helper()
	src := requireEnv(t, "BULWARK_TEST_DEBIAN_ROOT", "run scripts/test, which builds a Debian 12 root with debootstrap, or set it to such a root")
	if os.Geteuid() != 0 {
		t.Fatal("the Debian root tests need root: file owners and chroot validation are part of what they check")
	}
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy Debian root: %v: %s", err, out)
	}
	return dst
}

// debianFixture is the start of most root tests: a private copy of the
// Debian root, the built-in catalog, an engine and a snapshot of the root.
func debianFixture(t testing.TB) (string, *Catalog, *Engine, map[string]State) {
	t.Helper()
	root := debianRoot(t)
	return root, testCatalog(t), testEngine(t), snapshot(t, root)
}

// requireEnv returns an environment variable a test needs from the setup
// scripts. Without it the test fails (it must not pass by skipping), saying
// what to do; -short skips.
func requireEnv(t testing.TB, name, todo string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if testing.Short() {
			t.Skip("-short: no " + name)
		}
		t.Fatalf("%s is not set: %s (or use go test -short to skip the tests that need it)", name, todo)
	}
	return v
}

// snapshot records kind, mode, owner, link and content hash of every path
// under the root's /etc and /boot.
func snapshot(t testing.TB, root string) map[string]State {
	t.Helper()
	return snapshotOf(t, root, "etc", "boot")
}

// snapshotOf records every path under the root's tops.
func snapshotOf(t testing.TB, root string, tops ...string) map[string]State {
	t.Helper()
	out := map[string]State{}
	for _, top := range tops {
		base := filepath.Join(root, top)
		if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			st, err := diskState(p, true)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out["/"+rel] = st
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func diffSnapshots(t testing.TB, want, got map[string]State) {
	t.Helper()
	var bad []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			bad = append(bad, p+": missing, was "+w.String())
		} else if !g.same(w) {
			bad = append(bad, p+": "+g.String()+" sha "+g.SHA256[:min(8, len(g.SHA256))]+", was "+w.String()+" sha "+w.SHA256[:min(8, len(w.SHA256))])
		} else if g.MTime != w.MTime {
			bad = append(bad, p+": modified "+time.Unix(0, g.MTime).UTC().Format(time.RFC3339Nano)+", was "+time.Unix(0, w.MTime).UTC().Format(time.RFC3339Nano))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			bad = append(bad, p+": new "+g.String())
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("%d paths differ from the original:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
}

func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// everyProfile adds a profile holding every rule in the catalog.
func everyProfile(t testing.TB, c *Catalog) *Selection {
	t.Helper()
	var ids []string
	for _, r := range c.Rules() {
		ids = append(ids, r.ID)
	}
	y := "profiles:\n  - name: every\n    title: every rule\n    include: [" + strings.Join(ids, ", ") + "]\n"
	if err := c.Parse("every.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("every", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

var fixedNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testEngine(t testing.TB) *Engine {
	t.Helper()
	return NewEngine(slog.New(slog.NewTextHandler(testWriter{t}, nil)), func() time.Time { return fixedNow }, ExecCommander{})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestBuiltinCatalog(t *testing.T) {
	c := testCatalog(t)
	rules := c.Rules()
	if len(rules) < 50 {
		t.Errorf("%d built-in rules, want at least 50", len(rules))
	}
	types := map[string]int{}
	for _, r := range rules {
		types[r.Type]++
		if _, ok := stockVerdicts[r.ID]; !ok {
			t.Errorf("rule %s has no line in stockVerdicts", r.ID)
		}
	}
	for name := range ResourceTypes() {
		if types[name] == 0 {
			t.Errorf("no built-in rule uses resource type %s", name)
		}
	}
	for id := range stockVerdicts {
		if _, ok := c.Rule(id); !ok {
			t.Errorf("stockVerdicts names %s, which is not a rule", id)
		}
	}
	counts := map[string]int{}
	for _, p := range []string{"end-user", "small-business", "sysadmin", "web-server"} {
		sel, err := c.Select(p, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		counts[p] = len(sel.Rules)
		has := map[string]bool{}
		for _, s := range sel.Rules {
			has[s.Rule.ID] = true
		}
		switch p {
		case "end-user":
			for _, keep := range []string{"service-cups", "service-avahi-daemon", "module-usb-storage"} {
				if has[keep] {
					t.Errorf("end-user has %s: a workstation keeps printing, discovery and USB storage", keep)
				}
			}
		case "web-server":
			if !has["nginx-server-tokens"] || !has["ssh-permit-root-login"] {
				t.Errorf("web-server lacks nginx or small-business rules")
			}
		case "small-business":
			if has["nginx-server-tokens"] {
				t.Errorf("small-business has nginx rules")
			}
		}
	}
	if !(counts["end-user"] < counts["small-business"] && counts["small-business"] < counts["sysadmin"] && counts["small-business"] < counts["web-server"]) {
		t.Errorf("profile sizes %v: want end-user < small-business < sysadmin, web-server", counts)
	}
}

// TestDebianRootEveryRule is the whole life of every rule on a real Debian
// 12 root: its stock verdict, apply, pass, a second apply that changes
// nothing, and undo restoring every byte, mode and owner.
func TestDebianRootEveryRule(t *testing.T) {
	root := debianRoot(t)
	ctx := context.Background()
	c := testCatalog(t)
	sel := everyProfile(t, c)
	e := testEngine(t)
	orig := snapshot(t, root)

	rep, err := e.Audit(ctx, sel, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if want := stockVerdicts[r.ID]; r.Result != want {
			t.Errorf("stock %s: %s (found %q at %s, %s), want %s", r.ID, r.Result, r.Actual, r.Where, r.Detail, want)
		}
	}

	tree, err := NewTree(root)
	if err != nil {
		t.Fatal(err)
	}
	pkgsBefore, err := installedSet(tree)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	applied, err := e.Apply(ctx, sel, root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if applied.Run == "" || len(applied.Changes) == 0 {
		t.Fatalf("apply made no run or no changes: %+v", applied.Notes)
	}
	if !contains(applied.Notes, "sshd -t: ok") || !contains(applied.Notes, "nginx -t -q: ok") {
		t.Errorf("validators did not run: notes %q", applied.Notes)
	}

	after, err := e.Audit(ctx, sel, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range after.Results {
		want := stockVerdicts[r.ID]
		if want == ResultFail {
			want = ResultPass
		}
		if v, ok := afterApplyVerdicts[r.ID]; ok {
			want = v
		}
		if r.Type == "package_absent" && stockVerdicts[r.ID] == ResultFail {
			want = ResultFail // never removed automatically
		}
		if r.Result != want {
			t.Errorf("after apply %s: %s (found %q at %s, %s), want %s", r.ID, r.Result, r.Actual, r.Where, r.Detail, want)
		}
	}

	again, err := e.Apply(ctx, sel, root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 || again.Run != "" {
		t.Errorf("second apply changed %d paths (run %q), want nothing", len(again.Changes), again.Run)
	}

	res, err := e.Undo(ctx, state, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Run != applied.Run {
		t.Errorf("undo took run %s, want %s", res.Run, applied.Run)
	}
	if len(res.Purged) == 0 {
		t.Errorf("undo purged no package; apply installed the package rules' tools")
	}
	diffSnapshots(t, orig, snapshot(t, root))
	// Undo purged exactly what apply installed: dpkg lists the packages it
	// listed before.
	pkgsAfter, err := installedSet(tree)
	if err != nil {
		t.Fatal(err)
	}
	for p := range pkgsAfter {
		if !pkgsBefore[p] {
			t.Errorf("package %s still installed after undo", p)
		}
	}
	for p := range pkgsBefore {
		if !pkgsAfter[p] {
			t.Errorf("package %s was installed before apply and is gone after undo", p)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func selectProfile(t testing.TB, c *Catalog, name string) *Selection {
	t.Helper()
	sel, err := c.Select(name, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func TestDebianRootUndoRefusesChangedFile(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	state := t.TempDir()
	rep, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defs := filepath.Join(root, "etc/login.defs")
	b, err := os.ReadFile(defs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(defs, append(b, "# an admin's edit\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.Undo(ctx, state, rep.Run, false)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("undo after someone edited login.defs: %v, want a ConflictError", err)
	}
	if _, ok := ce.Paths["/etc/login.defs"]; !ok || !strings.Contains(err.Error(), "changed outside bulwark") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("conflict error does not name the file, its cause and --force: %v", err)
	}
	if got := snapshot(t, root)["/etc/sysctl.d/99-bulwark-lockdown.conf"]; !got.Exists() {
		t.Errorf("a refused undo restored files anyway")
	}
	res, err := e.Undo(ctx, state, rep.Run, true)
	if err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	// --force overwrote the admin's edit, but kept a copy of it.
	kept, ok := res.Kept["/etc/login.defs"]
	if !ok || len(res.Kept) != 1 {
		t.Fatalf("undo --force kept %v, want a copy of /etc/login.defs only", res.Kept)
	}
	if b, err := os.ReadFile(kept); err != nil || !strings.HasSuffix(string(b), "# an admin's edit\n") {
		t.Errorf("kept copy %s: %v, %q, want the admin's edit", kept, err, b)
	}
	if st, err := os.Stat(kept); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kept copy mode: %v %v, want 0600 (it may hold /etc/shadow's bytes)", st, err)
	}
}

// TestDebianRootJournalTravelsWithImage applies to a root without naming a
// state directory: the journal is inside the root, and undo works after the
// image is moved (mounted elsewhere), restoring every mtime too.
func TestDebianRootJournalTravelsWithImage(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	rep, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: DefaultStateDir(root)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/bulwark/lockdown/runs", rep.Run, "run.json")); err != nil {
		t.Fatalf("the journal is not inside the root: %v", err)
	}
	moved := filepath.Join(filepath.Dir(root), "mounted-elsewhere")
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	res, err := e.Undo(ctx, DefaultStateDir(moved), "", false)
	if err != nil {
		t.Fatalf("undo on the moved image: %v", err)
	}
	if res.Run != rep.Run || len(res.Restored) == 0 {
		t.Errorf("undo %+v, want run %s restored", res, rep.Run)
	}
	diffSnapshots(t, orig, snapshot(t, moved))
}

// TestDebianRootUndoAfterLaterRun undoes the first of two runs while the
// second is still in place, then the second.
func TestDebianRootUndoAfterLaterRun(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	state := t.TempDir()
	first, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	mid := snapshot(t, root)
	e2 := NewEngine(slog.New(slog.NewTextHandler(testWriter{t}, nil)), func() time.Time { return fixedNow.Add(time.Minute) }, ExecCommander{})
	second, err := e2.Apply(ctx, selectProfile(t, c, "web-server"), root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if second.Run == "" {
		t.Fatal("web-server after small-business changed nothing; the nginx rules should have")
	}
	for _, ch := range second.Changes {
		if !strings.HasPrefix(ch.Path, "/etc/nginx/") {
			t.Errorf("second run changed %s, want only nginx files", ch.Path)
		}
	}
	if _, err := e.Undo(ctx, state, first.Run, false); err != nil {
		t.Fatalf("undo first run with a later run in place: %v", err)
	}
	got := snapshot(t, root)
	for p, st := range orig {
		if strings.HasPrefix(p, "/etc/nginx/") {
			continue
		}
		if !got[p].same(st) {
			t.Errorf("%s not restored by undoing the first run", p)
		}
	}
	_ = mid
	if _, err := e.Undo(ctx, state, "", false); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	if _, err := e.Undo(ctx, state, "", false); err == nil || !strings.Contains(err.Error(), "nothing to undo") {
		t.Errorf("undo with every run undone: %v, want nothing to undo", err)
	}
}

// TestDebianRootValidationFailureRollsBack adds a rule whose change sshd
// rejects: sshd -t fails after the files are written and everything is
// rolled back.
func TestDebianRootValidationFailureRollsBack(t *testing.T) {
	root := debianRoot(t)
	ctx := context.Background()
	c := testCatalog(t)
	err := c.Parse("bad.yaml", []byte(`rules:
  - id: bad-sshd-option
    title: an option sshd does not know
    rationale: to make sshd -t fail
    severity: low
    profiles: [small-business]
    disruption: low
    resource: {type: sshd_option, option: NoSuchOption, value: "yes", default: "no"}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t)
	orig := snapshot(t, root)
	state := t.TempDir()
	_, err = e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: state})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "NoSuchOption") {
		t.Fatalf("apply with an option sshd rejects: %v, want a ValidationError quoting sshd", err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	runs, err := e.Runs(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != StatusRolledBack {
		t.Errorf("runs %+v, want one rolled-back run", runs)
	}
}

func TestDebianRootSessionGuard(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	sess := Session{SSH: true, User: "root", Client: "192.0.2.7"}
	_, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: t.TempDir(), Session: sess})
	var re *RefusedError
	if !errors.As(err, &re) || re.Reasons["ssh-permit-root-login"] == "" {
		t.Fatalf("apply as root over SSH: %v, want ssh-permit-root-login refused", err)
	}
	if !strings.Contains(err.Error(), "ssh-permit-root-login") || !strings.Contains(err.Error(), "192.0.2.7") {
		t.Errorf("refusal does not name the rule and the session: %v", err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	if _, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: t.TempDir(), Session: sess, Force: true}); err != nil {
		t.Errorf("--force: %v", err)
	}
	// A key-authenticated non-root user is not locked out by the same profile.
	root2 := debianRoot(t)
	user := Session{SSH: true, User: "admin", Client: "192.0.2.7", KeyAuth: true}
	if _, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root2, ApplyOptions{StateDir: t.TempDir(), Session: user}); err != nil {
		t.Errorf("apply as a key-authenticated user: %v", err)
	}
}

func TestDebianRootDryRunChangesNothing(t *testing.T) {
	root := debianRoot(t)
	c := testCatalog(t)
	e := testEngine(t)
	orig := snapshot(t, root)
	state := filepath.Join(t.TempDir(), "state")
	rep, err := e.Apply(context.Background(), selectProfile(t, c, "web-server"), root, ApplyOptions{StateDir: state, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) == 0 {
		t.Fatal("dry run planned no changes on a stock root")
	}
	var diff strings.Builder
	WriteChanges(&diff, rep.Changes)
	for _, want := range []string{"+++ b/etc/ssh/sshd_config", "+" + sshdBlockBegin, "+PermitRootLogin no", "-\tssl_protocols TLSv1 TLSv1.1", "+#bulwark-lockdown# \tssl_protocols", "/etc/cron.d: dir 0755 0:0 -> dir 0700 0:0"} {
		if !strings.Contains(diff.String(), want) {
			t.Errorf("dry-run diff lacks %q:\n%s", want, diff.String())
		}
	}
	diffSnapshots(t, orig, snapshot(t, root))
	if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run created the state directory")
	}
	// Every file:line the report names points into the file on disk, at a
	// line holding the value found, even where earlier rules' staged
	// changes shift lines (login.defs gets PASS_MAX_DAYS before PASS_MIN_DAYS).
	checked := 0
	for _, r := range rep.Results {
		file, line, ok := strings.Cut(r.Where, ":")
		if !ok || !strings.HasPrefix(file, "/") || r.Type != "sshd_option" && r.Type != "sysctl" && r.Type != "file_kv" {
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			continue
		}
		tree, err := NewTree(root)
		if err != nil {
			t.Fatal(err)
		}
		b, err := tree.ReadFile(file) // inside the root: nginx's sites-enabled links are absolute
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		if n < 1 || n > len(lines) || !strings.Contains(normSpace(lines[n-1]), normSpace(r.Actual)) {
			t.Errorf("%s: dry run says %q at %s, but that line on disk is %q", r.ID, r.Actual, r.Where, lines[min(max(n-1, 0), len(lines)-1)])
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("only %d results name a file:line", checked)
	}
}

// TestDebianRootUndoAfterInterruptedInstall: a run killed while apt-get
// installed its packages never recorded what apt installed; undo purges
// what dpkg holds now and did not have before the run, and /etc and /boot
// come back exactly.
func TestDebianRootUndoAfterInterruptedInstall(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	y := "profiles:\n  - name: acct-only\n    title: acct\n    include: [pkg-acct]\n"
	if err := c.Parse("acct.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	rep, err := e.Apply(ctx, selectProfile(t, c, "acct-only"), root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(state)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := j.Run(rep.Run)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Installed) == 0 || rec.Packages[0] != "acct" {
		t.Fatalf("run record: packages %q, installed %q", rec.Packages, rec.Installed)
	}
	// What kill -9 during apt-get leaves: the packages asked for, nothing
	// recorded as installed, the run still applying.
	rec.Installed, rec.Status = nil, StatusApplying
	if err := (&RunWriter{dir: j.runDir(rep.Run), rec: rec}).save(); err != nil {
		t.Fatal(err)
	}
	res, err := e.Undo(ctx, state, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(res.Purged, "acct") {
		t.Errorf("undo purged %q, want acct among them", res.Purged)
	}
	if set, err := installedIn(root); err != nil || set["acct"] {
		t.Errorf("acct still installed after undo (%v)", err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
}
