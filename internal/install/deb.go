package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/facts"
)

// Deb installs .deb payloads with the real dpkg.
//
// For root "/" it runs dpkg as it is. For a directory root it adds
// --root=DIR (dpkg then uses DIR as its install directory and
// DIR/var/lib/dpkg as its database), --log=DIR/var/log/dpkg.log (dpkg
// 1.21 otherwise logs a directory root's changes into the host's
// /var/log/dpkg.log) and --force-script-chrootless: without it dpkg
// chroots into DIR to run maintainer scripts, which fails in a root that
// has no /bin/sh ("unable to execute installed … post-installation script
// … No such file or directory") and would run the image's own binaries
// with the host's privileges. Chrootless, scripts run on the host with
// DPKG_ROOT=DIR set and must write under "$DPKG_ROOT", which is what
// Debian's own DPKG_ROOT support expects of packages.
type Deb struct {
	opts Options
	log  *slog.Logger
}

var _ Handler = (*Deb)(nil)

// debRecord is what a deb install leaves in StateDir/deb/ID.json so that
// uninstall knows the packages after the payload files are gone.
type debRecord struct {
	Format   int       `json:"format"` // debRecordFormat
	Update   string    `json:"update"`
	Packages []debInfo `json:"packages"`
}

const debRecordFormat = 1

type debInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// InitRoot prepares an empty directory root for dpkg: var/lib/dpkg with an
// empty status and available, info/, updates/ and triggers/, and var/log.
// Existing files are left as they are, so it is safe on a prepared root.
func InitRoot(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
		return fmt.Errorf("init root %q: want an absolute directory other than /", dir)
	}
	admin := filepath.Join(dir, "var", "lib", "dpkg")
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			return fmt.Errorf("init root: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "var", "log"), 0o755); err != nil {
		return fmt.Errorf("init root: %w", err)
	}
	for _, f := range []string{"status", "available"} {
		p := filepath.Join(admin, f)
		if _, err := os.Lstat(p); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init root: %w", err)
		}
		if err := atomicfile.WriteFile(p, nil, 0o644); err != nil {
			return fmt.Errorf("init root: %w", err)
		}
	}
	return nil
}

// Install installs every .deb payload of the update in one dpkg call. When
// dpkg fails (a missing dependency, a failing maintainer script), packages
// this call introduced are purged again, so the machine is as before; a
// package that was installed before at another version cannot be put back
// (its old .deb is not at hand) and is left as dpkg left it, usually
// unpacked, which the Failure says. `dpkg --configure --pending` finishes it
// once the cause is fixed, and the next install of the update does too.
func (d *Deb) Install(ctx context.Context, req Request) (Result, error) {
	if err := req.check(true); err != nil {
		return Result{}, err
	}
	id := req.Update.ID
	if err := checkID(id); err != nil {
		return Result{}, err
	}
	log := d.log.With("update", id, "root", req.Root)
	var paths []string
	var pkgs []debInfo
	for _, p := range req.Update.Payloads {
		if !strings.HasSuffix(p.File, ".deb") {
			return Result{}, fmt.Errorf("update %s: payload %q: installer type deb takes only .deb files: %w", id, p.File, ErrBadRequest)
		}
		// Absolute, so that no path can read as a dpkg option.
		path, err := filepath.Abs(req.Payloads[p.File])
		if err != nil {
			return Result{}, fmt.Errorf("update %s: payload %s: %w", id, p.File, err)
		}
		info, err := d.debInfo(ctx, path)
		if err != nil {
			return Result{}, &Failure{Update: id, Step: "read package", Reason: fmt.Sprintf("payload %s: %v", p.File, err), Err: err}
		}
		paths = append(paths, path)
		pkgs = append(pkgs, info)
	}
	before, err := statusOf(req.Root)
	if err != nil {
		return Result{}, err
	}
	// Record the packages first: a crash after dpkg ran still lets
	// uninstall find them.
	if err := writeRecord(req.StateDir, "deb", id, debRecord{Format: debRecordFormat, Update: id, Packages: pkgs}); err != nil {
		return Result{}, err
	}
	marker := rebootMarker(req.Root)
	out, err := d.dpkg(ctx, req.Root, append([]string{"--install"}, paths...)...)
	res := Result{Output: out}
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("update %s: dpkg --install: %w", id, ctx.Err())
		}
		reason := dpkgReason(out)
		left, cerr := d.cleanUp(context.WithoutCancel(ctx), req.Root, pkgs, before)
		if cerr != nil {
			reason += "; cleaning up failed: " + cerr.Error()
		}
		if left != "" {
			reason += "; " + left
		}
		if left == "" && cerr == nil {
			removeRecord(req.StateDir, "deb", id)
		}
		log.Warn("dpkg --install failed", "reason", reason)
		return res, &Failure{Update: id, Step: "dpkg --install", Reason: reason, Err: err}
	}
	res.RebootRequired = needReboot(req.Update.Reboot, marker, rebootMarker(req.Root))
	log.Info("installed", "packages", len(pkgs), "reboot", res.RebootRequired)
	return res, nil
}

// cleanUp purges the packages of a failed call that were not installed
// before it, and describes the ones it had to leave.
func (d *Deb) cleanUp(ctx context.Context, root string, pkgs []debInfo, before map[string]facts.Package) (string, error) {
	after, err := statusOf(root)
	if err != nil {
		return "", err
	}
	var purge []string
	var left []string
	for _, p := range pkgs {
		key := p.Name + ":" + p.Arch
		now, ok := after[key]
		if !ok || now.Installed() {
			continue
		}
		was, existed := before[key]
		if !existed || stateOf(was) == "not-installed" || stateOf(was) == "config-files" {
			purge = append(purge, key)
			continue
		}
		left = append(left, fmt.Sprintf("%s left %s at %s (%s was %s before; its old package is not at hand to restore)",
			p.Name, stateOf(now), now.Version, was.Version, stateOf(was)))
	}
	if len(purge) > 0 {
		if out, err := d.dpkg(ctx, root, append([]string{"--purge"}, purge...)...); err != nil {
			return strings.Join(left, "; "), fmt.Errorf("dpkg --purge %s: %s", strings.Join(purge, " "), dpkgReason(out))
		}
		d.log.Info("purged the packages a failed install introduced", "packages", purge)
	}
	return strings.Join(left, "; "), nil
}

// Uninstall removes (dpkg --remove) the packages the update installed, read
// from the record its install left in StateDir, or from its payloads when
// there is no record. A package no longer installed is skipped; one now at
// another version than the update installed is refused, since removing it
// would remove a newer update's package, unless req.Force.
func (d *Deb) Uninstall(ctx context.Context, req Request) (Result, error) {
	if err := req.checkUninstall(); err != nil {
		return Result{}, err
	}
	id := req.Update.ID
	rec, err := readDebRecord(req.StateDir, id)
	if err != nil {
		return Result{}, err
	}
	if rec == nil {
		rec = &debRecord{Update: id}
		for _, p := range req.Update.Payloads {
			path, ok := req.Payloads[p.File]
			if !ok {
				return Result{}, fmt.Errorf("update %s: no install record in %s and payload %q has no local file: %w", id, req.StateDir, p.File, ErrBadRequest)
			}
			info, err := d.debInfo(ctx, path)
			if err != nil {
				return Result{}, &Failure{Update: id, Step: "read package", Reason: fmt.Sprintf("payload %s: %v", p.File, err), Err: err}
			}
			rec.Packages = append(rec.Packages, info)
		}
	}
	now, err := statusOf(req.Root)
	if err != nil {
		return Result{}, err
	}
	var names []string
	for _, p := range rec.Packages {
		cur, ok := now[p.Name+":"+p.Arch]
		if !ok || stateOf(cur) == "not-installed" || stateOf(cur) == "config-files" {
			continue
		}
		if cur.Version != p.Version && !req.Force {
			return Result{}, &Failure{Update: id, Step: "dpkg --remove", Err: ErrChanged,
				Reason: fmt.Sprintf("%s is now at version %s, not %s as this update installed it; removing it would remove a later version (force to remove anyway)", p.Name, cur.Version, p.Version)}
		}
		names = append(names, p.Name+":"+p.Arch)
	}
	if len(names) == 0 {
		removeRecord(req.StateDir, "deb", id)
		return Result{Output: "nothing to remove: the update's packages are not installed"}, nil
	}
	marker := rebootMarker(req.Root)
	out, err := d.dpkg(ctx, req.Root, append([]string{"--remove"}, names...)...)
	res := Result{Output: out}
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("update %s: dpkg --remove: %w", id, ctx.Err())
		}
		return res, &Failure{Update: id, Step: "dpkg --remove", Reason: dpkgReason(out), Err: err}
	}
	removeRecord(req.StateDir, "deb", id)
	res.RebootRequired = needReboot(req.Update.Reboot, marker, rebootMarker(req.Root))
	return res, nil
}

// dpkg runs dpkg non-interactively against root with args, and returns what
// it printed (stdout and stderr interleaved, capped).
func (d *Deb) dpkg(ctx context.Context, root string, args ...string) (string, error) {
	base := []string{"--force-confdef", "--force-confold"}
	if filepath.Clean(root) != "/" {
		if err := os.MkdirAll(filepath.Join(root, "var", "log"), 0o755); err != nil {
			return "", fmt.Errorf("prepare root: %w", err)
		}
		base = append(base, "--root="+root, "--log="+filepath.Join(root, "var", "log", "dpkg.log"), "--force-script-chrootless")
	}
	cmd := exec.CommandContext(ctx, d.opts.DpkgPath, append(base, args...)...)
	cmd.Env = toolEnv()
	cmd.Stdin = nil // /dev/null: a prompt reads EOF rather than waiting
	buf := &cappedBuffer{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = buf, buf
	// dpkg and the maintainer scripts it runs get a process group of their
	// own: dpkg does not pass SIGTERM on to a running script, so on
	// cancellation the whole group gets SIGTERM, then SIGKILL after a
	// grace period. dpkg records each step in its database as it goes; a
	// package interrupted mid-way is left half-installed or
	// half-configured, and the next dpkg --install of it finishes it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		time.AfterFunc(killGrace, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = killGrace + 5*time.Second
	d.log.Debug("run", "cmd", cmd.Args)
	err := cmd.Run()
	return buf.String(), err
}

// killGrace is how long dpkg and its scripts get between SIGTERM and
// SIGKILL once the caller's context is done.
const killGrace = 10 * time.Second

// toolEnv is the whole environment of dpkg and the maintainer scripts it
// runs: nothing inherited from the agent.
func toolEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"DEBIAN_FRONTEND=noninteractive",
		"LC_ALL=C",
		"HOME=/root",
	}
}

// debInfo reads a .deb's Package, Version and Architecture with dpkg-deb.
func (d *Deb) debInfo(ctx context.Context, path string) (debInfo, error) {
	tool := "dpkg-deb"
	if dir := filepath.Dir(d.opts.DpkgPath); strings.ContainsRune(d.opts.DpkgPath, '/') {
		tool = filepath.Join(dir, "dpkg-deb")
	}
	cmd := exec.CommandContext(ctx, tool, "--show", "--showformat=${Package}\\t${Version}\\t${Architecture}\\n", "--", path)
	cmd.Env = toolEnv()
	out := &cappedBuffer{max: 4096}
	errb := &cappedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Run(); err != nil {
		return debInfo{}, fmt.Errorf("dpkg-deb --show: %v: %s", err, errb.String())
	}
	return parseShow(out.String())
}

var (
	debNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	debVersionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`)
	debArchRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// parseShow parses one "NAME\tVERSION\tARCH" line printed by dpkg-deb
// --show from a package's control file, which is untrusted: each field is
// checked against Debian policy's syntax before it reaches a dpkg argument.
func parseShow(s string) (debInfo, error) {
	s = strings.TrimSuffix(s, "\n")
	f := strings.Split(s, "\t")
	if len(f) != 3 || strings.ContainsRune(s, '\n') {
		return debInfo{}, fmt.Errorf("control fields %q: want one Package, Version and Architecture", trunc(s))
	}
	info := debInfo{Name: f[0], Version: f[1], Arch: f[2]}
	switch {
	case len(info.Name) > 200 || !debNameRE.MatchString(info.Name):
		return debInfo{}, fmt.Errorf("package name %q: want lowercase letters, digits, '+', '-', '.'", trunc(info.Name))
	case len(info.Version) > 200 || !debVersionRE.MatchString(info.Version):
		return debInfo{}, fmt.Errorf("package %s: version %q: want a Debian version such as 1.2-1", info.Name, trunc(info.Version))
	case len(info.Arch) > 64 || !debArchRE.MatchString(info.Arch):
		return debInfo{}, fmt.Errorf("package %s: architecture %q: want one such as all or amd64", info.Name, trunc(info.Arch))
	}
	return info, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// dpkgReason picks dpkg's own explanation out of what it printed: every
// "dpkg: …" or "dpkg (subprocess): …" message that is not a warning, with
// its indented continuation lines, joined into one line each; the error
// summary first. When there is none it returns the last lines printed.
func dpkgReason(out string) string {
	var msgs []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			msgs = append(msgs, strings.Join(cur, " "))
			cur = nil
		}
	}
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "dpkg: ") || strings.HasPrefix(line, "dpkg (subprocess): "):
			flush()
			_, msg, _ := strings.Cut(line, ": ")
			if strings.HasPrefix(msg, "warning: ") {
				continue
			}
			cur = append(cur, strings.TrimSpace(msg))
		case len(cur) > 0 && trimmed != "" && (line[0] == ' ' || line[0] == '\t'):
			cur = append(cur, trimmed)
		default:
			flush()
		}
	}
	flush()
	if len(msgs) == 0 {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) > 3 {
			lines = lines[len(lines)-3:]
		}
		return strings.Join(lines, " ")
	}
	// "error processing package foo (--install): dependency problems -
	// leaving unconfigured" says what happened; the message before it
	// says why. Put the summary first.
	slices.SortStableFunc(msgs, func(a, b string) int {
		ea, eb := strings.HasPrefix(a, "error processing"), strings.HasPrefix(b, "error processing")
		switch {
		case ea && !eb:
			return -1
		case eb && !ea:
			return 1
		}
		return 0
	})
	return strings.Join(msgs, "; ")
}

// statusOf reads root's dpkg database (status and journal), keyed by
// "name:arch".
func statusOf(root string) (map[string]facts.Package, error) {
	list, err := facts.ReadDatabase(root)
	if err != nil {
		return nil, fmt.Errorf("read dpkg database of %s: %w", root, err)
	}
	m := make(map[string]facts.Package, len(list))
	for _, p := range list {
		m[p.Name+":"+p.Arch] = p
	}
	return m, nil
}

// stateOf returns the third word of a dpkg status, e.g. "unpacked".
func stateOf(p facts.Package) string {
	f := strings.Fields(p.Status)
	if len(f) != 3 {
		return "unknown"
	}
	return f[2]
}

// rebootMarker describes ROOT/run/reboot-required (Debian's convention for
// "a reboot is needed"), or "" when it does not exist.
func rebootMarker(root string) string {
	st, err := os.Stat(filepath.Join(root, "run", "reboot-required"))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
}

func needReboot(r catalog.Reboot, before, after string) bool {
	switch r {
	case catalog.RebootRequired:
		return true
	case catalog.RebootMaybe:
		return after != "" && after != before
	}
	return false
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkID refuses update IDs that cannot name a state file.
func checkID(id string) error {
	if len(id) > 200 || !idRE.MatchString(id) {
		return fmt.Errorf("update id %q: want letters, digits, '.', '_', '-' (at most 200): %w", trunc(id), ErrBadRequest)
	}
	return nil
}

// readDebRecord returns nil, nil when there is no record.
func readDebRecord(stateDir, id string) (*debRecord, error) {
	var rec debRecord
	if ok, err := readRecord(stateDir, "deb", id, 1<<20, &rec); !ok || err != nil {
		return nil, err
	}
	p := stateFile(stateDir, "deb", id)
	if rec.Format != debRecordFormat {
		return nil, fmt.Errorf("install record %s: format %d, this agent reads format %d (upgrade the agent)", p, rec.Format, debRecordFormat)
	}
	for _, pkg := range rec.Packages {
		if _, err := parseShow(pkg.Name + "\t" + pkg.Version + "\t" + pkg.Arch); err != nil {
			return nil, fmt.Errorf("install record %s: %w", p, err)
		}
	}
	return &rec, nil
}
