package install

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/bulwarkhq/bulwark/internal/debpkg"
	"github.com/bulwarkhq/bulwark/internal/facts"
)

// Deb installs .deb payloads as apt installs them.
//
// When the target root has apt (a Debian system, "/" or a directory root),
// the verified payload files go to `apt-get install` inside the root: for a
// directory root apt-get is the root's own, run chrooted into it, so apt's
// ordering (Pre-Depends before the packages that need them, unpack and
// configure across the payloads of the pass) and every maintainer script
// run inside the root, never on the host. apt sees only the installed
// packages and the payloads (no sources, no lists), so it cannot fetch
// anything else; a dependency the payloads do not satisfy is refused by apt
// before anything changes, with apt's reason.
//
// A directory root without apt (an image under construction, a test root)
// gets dpkg --root=DIR, in Pre-Depends order across the payloads; dpkg runs
// maintainer scripts chrooted into DIR. A root without /bin/sh cannot run
// them: a package with maintainer scripts is refused there before anything
// changes.
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

// Install installs every .deb payload of the update in one apt-get (or
// dpkg) transaction and checks that dpkg then has each payload package
// installed at the payload's version. When it fails, packages this call
// introduced are purged again; a package that was installed before at
// another version is left as apt and dpkg left it (apt refuses dependency
// problems before changing anything; a failing maintainer script leaves its
// package half-configured, as apt would), which the Failure says with apt's
// and dpkg's reason. The next install of the update finishes it.
func (d *Deb) Install(ctx context.Context, req Request) (Result, error) {
	if err := req.check(true); err != nil {
		return Result{}, err
	}
	id := req.Update.ID
	if err := checkID(id); err != nil {
		return Result{}, err
	}
	log := d.log.With("update", id, "root", req.Root)
	paths, pkgs, full, err := d.readPayloads(req)
	if err != nil {
		return Result{}, err
	}
	t, err := d.target(req.Root)
	if err != nil {
		return Result{}, err
	}
	if err := t.canRun(id, full); err != nil {
		return Result{}, err
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
	var out string
	step := "apt-get install"
	if t.apt {
		out, err = d.aptInstall(ctx, t, paths)
	} else {
		step = "dpkg --install"
		out, err = d.dpkgInstall(ctx, t, paths, full)
	}
	res := Result{Output: out}
	if err == nil {
		err = installedAsPaid(req.Root, pkgs)
	}
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("update %s: %s: %w", id, step, ctx.Err())
		}
		reason := toolReason(out)
		var short *shortfall
		if errors.As(err, &short) {
			reason = short.Error()
		}
		left, cerr := d.cleanUp(context.WithoutCancel(ctx), t, pkgs, before)
		if cerr != nil {
			reason += "; cleaning up failed: " + cerr.Error()
		}
		if left != "" {
			reason += "; " + left
		}
		if left == "" && cerr == nil {
			removeRecord(req.StateDir, "deb", id)
		}
		log.Warn(step+" failed", "reason", reason)
		return res, &Failure{Update: id, Step: step, Reason: reason, Err: err}
	}
	res.RebootRequired = needReboot(req.Update.Reboot, marker, rebootMarker(req.Root))
	log.Info("installed", "packages", len(pkgs), "with", step, "reboot", res.RebootRequired)
	return res, nil
}

// readPayloads checks an update's payloads and reads each .deb.
func (d *Deb) readPayloads(req Request) (paths []string, pkgs []debInfo, full []debpkg.Info, err error) {
	id := req.Update.ID
	for _, p := range req.Update.Payloads {
		if !strings.HasSuffix(p.File, ".deb") {
			return nil, nil, nil, fmt.Errorf("update %s: payload %q: installer type deb takes only .deb files: %w", id, p.File, ErrBadRequest)
		}
		// Absolute, so that no path can read as an option.
		path, err := filepath.Abs(req.Payloads[p.File])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("update %s: payload %s: %w", id, p.File, err)
		}
		info, err := debpkg.ReadFile(path)
		if err != nil {
			return nil, nil, nil, &Failure{Update: id, Step: "read package", Reason: fmt.Sprintf("payload %s: %v", p.File, err), Err: err}
		}
		paths = append(paths, path)
		full = append(full, info)
		pkgs = append(pkgs, debInfo{Name: info.Name, Version: info.Version, Arch: info.Arch})
	}
	return paths, pkgs, full, nil
}

// canRun refuses packages with maintainer scripts for a root that cannot
// run them.
func (t target) canRun(id string, full []debpkg.Info) error {
	if t.shell {
		return nil
	}
	for _, info := range full {
		if len(info.Scripts) > 0 {
			return &Failure{Update: id, Step: "check root", Err: ErrNoShell,
				Reason: fmt.Sprintf("root %s has no /bin/sh, so the maintainer scripts of %s (%s) cannot run inside it; they are never run on the host. Install into a root with a shell (a debootstrapped system) or use packages without maintainer scripts",
					t.root, info.Name, strings.Join(info.Scripts, ", "))}
		}
	}
	return nil
}

// InstallBatch installs the deb updates of one pass in one apt-get (or
// dpkg) transaction, as `apt-get install` of all their payloads would: apt
// orders Pre-Depends and Depends across the updates, and a root that an
// earlier broken install left with unmet dependencies is repaired by the
// update that carries the fix rather than refusing every other one. Each
// update then succeeds when dpkg has its packages installed at its
// versions. When the transaction fails as a whole, each update is installed
// on its own (Install), so that one bad update does not hold back the
// others. The results and errors are in the order of reqs.
func (d *Deb) InstallBatch(ctx context.Context, reqs []Request) ([]Result, []error) {
	results, errs := make([]Result, len(reqs)), make([]error, len(reqs))
	one := func() ([]Result, []error) {
		for i, r := range reqs {
			results[i], errs[i] = d.Install(ctx, r)
		}
		return results, errs
	}
	if len(reqs) < 2 {
		return one()
	}
	var paths []string
	var full []debpkg.Info
	pkgs := make([][]debInfo, len(reqs))
	root := ""
	for i, r := range reqs {
		if err := r.check(true); err != nil {
			return one()
		}
		if err := checkID(r.Update.ID); err != nil {
			return one()
		}
		if root == "" {
			root = r.Root
		} else if root != r.Root {
			return one()
		}
		p, k, f, err := d.readPayloads(r)
		if err != nil {
			return one()
		}
		paths, full, pkgs[i] = append(paths, p...), append(full, f...), k
	}
	t, err := d.target(root)
	if err != nil {
		return one()
	}
	if err := t.canRun("", full); err != nil {
		return one()
	}
	for i, r := range reqs {
		if err := writeRecord(r.StateDir, "deb", r.Update.ID, debRecord{Format: debRecordFormat, Update: r.Update.ID, Packages: pkgs[i]}); err != nil {
			errs[i] = err
			return results, errs
		}
	}
	marker := rebootMarker(root)
	var out string
	if t.apt {
		out, err = d.aptInstall(ctx, t, paths)
	} else {
		out, err = d.dpkgInstall(ctx, t, paths, full)
	}
	if err != nil {
		if ctx.Err() != nil {
			for i, r := range reqs {
				errs[i] = fmt.Errorf("update %s: %w", r.Update.ID, ctx.Err())
			}
			return results, errs
		}
		d.log.Warn("one transaction for the pass failed; installing each update on its own", "updates", len(reqs), "reason", toolReason(out))
		return one()
	}
	after := rebootMarker(root)
	for i, r := range reqs {
		results[i] = Result{Output: out, RebootRequired: needReboot(r.Update.Reboot, marker, after)}
		if err := installedAsPaid(root, pkgs[i]); err != nil {
			errs[i] = &Failure{Update: r.Update.ID, Step: "apt-get install", Reason: err.Error(), Err: err}
		}
	}
	d.log.Info("installed in one transaction", "updates", len(reqs), "packages", len(paths))
	return results, errs
}

// shortfall: the tool succeeded but a payload package is not installed at
// its version.
type shortfall struct{ what []string }

func (s *shortfall) Error() string {
	return "not installed as the payloads say: " + strings.Join(s.what, "; ")
}

// installedAsPaid checks that dpkg now has every package installed ("install
// ok installed") at its payload version.
func installedAsPaid(root string, pkgs []debInfo) error {
	now, err := statusOf(root)
	if err != nil {
		return err
	}
	var bad []string
	for _, p := range pkgs {
		cur, ok := now[p.Name+":"+p.Arch]
		switch {
		case !ok:
			bad = append(bad, p.Name+" is not in the dpkg database")
		case !cur.Installed() || cur.Version != p.Version:
			bad = append(bad, fmt.Sprintf("%s is %s at %s, want installed at %s", p.Name, stateOf(cur), cur.Version, p.Version))
		}
	}
	if len(bad) > 0 {
		return &shortfall{what: bad}
	}
	return nil
}

// cleanUp purges the packages of a failed call that were not installed
// before it, and describes the ones it had to leave.
func (d *Deb) cleanUp(ctx context.Context, t target, pkgs []debInfo, before map[string]facts.Package) (string, error) {
	after, err := statusOf(t.root)
	if err != nil {
		return "", err
	}
	var purge []string
	var left []string
	for _, p := range pkgs {
		key := p.Name + ":" + p.Arch
		now, ok := after[key]
		if !ok || (now.Installed() && now.Version == p.Version) {
			continue
		}
		was, existed := before[key]
		if !existed || stateOf(was) == "not-installed" || stateOf(was) == "config-files" {
			if stateOf(now) != "not-installed" && stateOf(now) != "config-files" {
				purge = append(purge, key)
			}
			continue
		}
		if now.Version == was.Version && stateOf(now) == stateOf(was) {
			continue // as it was
		}
		left = append(left, fmt.Sprintf("%s left %s at %s (%s was %s before; its old package is not at hand to restore)",
			p.Name, stateOf(now), now.Version, was.Version, stateOf(was)))
	}
	if len(purge) > 0 {
		if out, err := d.run(ctx, t, "dpkg", append([]string{"--purge"}, purge...)...); err != nil {
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
			info, err := debpkg.ReadFile(path)
			if err != nil {
				return Result{}, &Failure{Update: id, Step: "read package", Reason: fmt.Sprintf("payload %s: %v", p.File, err), Err: err}
			}
			rec.Packages = append(rec.Packages, debInfo{Name: info.Name, Version: info.Version, Arch: info.Arch})
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
	t, err := d.target(req.Root)
	if err != nil {
		return Result{}, err
	}
	if !t.shell {
		for _, n := range names {
			if s := installedScripts(req.Root, n); len(s) > 0 {
				return Result{}, &Failure{Update: id, Step: "check root", Err: ErrNoShell,
					Reason: fmt.Sprintf("root %s has no /bin/sh, so the maintainer scripts of %s (%s) cannot run inside it; they are never run on the host", req.Root, n, strings.Join(s, ", "))}
			}
		}
	}
	marker := rebootMarker(req.Root)
	out, err := d.run(ctx, t, "dpkg", append([]string{"--remove"}, names...)...)
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

// target is a root as the deb handler drives it.
type target struct {
	root  string // "/" or a directory root, clean
	dir   bool   // a directory root: apt runs chrooted into it, dpkg with --root
	apt   bool   // apt-get (and dpkg) of the root do the install
	shell bool   // the root has /bin/sh, so maintainer scripts can run in it
}

// target looks at root: a directory root with apt-get, dpkg and /bin/sh is
// driven with its own apt, chrooted; one without apt with the host's dpkg
// --root (scripts chrooted by dpkg); "/" with the host's apt-get when there
// is one.
func (d *Deb) target(root string) (target, error) {
	t := target{root: filepath.Clean(root)}
	if t.root == "/" {
		_, err := exec.LookPath(d.opts.AptGetPath)
		t.apt, t.shell = err == nil, true
		return t, nil
	}
	t.dir = true
	if st, err := os.Stat(t.root); err != nil || !st.IsDir() {
		return t, fmt.Errorf("root %s: want an existing directory: %w", t.root, ErrBadRequest)
	}
	t.shell = executable(t.root, "bin/sh")
	t.apt = t.shell && !d.opts.NoApt && executable(t.root, "usr/bin/apt-get") && executable(t.root, "usr/bin/dpkg")
	return t, nil
}

// executable says whether ROOT/rel is an executable file. The lookup
// resolves symbolic links inside root only (os.Root), so an image's
// absolute /bin -> /usr/bin link is followed within the image.
func executable(root, rel string) bool {
	r, err := os.OpenRoot(root)
	if err != nil {
		return false
	}
	defer r.Close()
	st, err := r.Stat(rel)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// installedScripts lists the maintainer scripts dpkg keeps for the
// installed package name ("name:arch" or "name") in root.
func installedScripts(root, name string) []string {
	var out []string
	base, _, _ := strings.Cut(name, ":")
	for _, n := range []string{name, base} {
		for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
			if _, err := os.Lstat(filepath.Join(root, "var/lib/dpkg/info", n+"."+s)); err == nil && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// aptInstall runs apt-get install --fix-broken --no-remove with the payload
// files. apt sees no
// sources and no package lists, only the installed packages and these
// files, so it can take nothing from elsewhere. In a directory root the
// files are linked (or copied) into ROOT/var/cache for the chrooted apt and
// removed again afterwards.
func (d *Deb) aptInstall(ctx context.Context, t target, paths []string) (string, error) {
	// --fix-broken: a root that an earlier broken install left with unmet
	// dependencies (the pam update half done) is what apt itself says to
	// repair with `apt --fix-broken install`; without it apt refuses every
	// install there, even the one that carries the fix. --no-remove: apt
	// never removes a package to make room for an update (it would ask a
	// person; the agent cannot), it fails instead, saying why.
	args := []string{"install", "--yes", "--quiet", "--fix-broken", "--no-remove",
		"-o", "Dpkg::Use-Pty=0",
		"-o", "APT::Sandbox::User=root",
		"-o", "Dir::Etc::SourceList=/dev/null",
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::Cache::pkgcache=",
		"-o", "Dir::Cache::srcpkgcache=",
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
	}
	lists, err := os.MkdirTemp(filepath.Join(t.root, "var", "cache"), "bulwark-install-")
	if err != nil {
		return "", fmt.Errorf("stage payloads in %s: %w", t.root, err)
	}
	defer os.RemoveAll(lists)
	inside := func(p string) string { return p }
	if t.dir {
		inside = func(p string) string { return "/" + strings.TrimPrefix(p, t.root+"/") }
	}
	if err := os.Mkdir(filepath.Join(lists, "lists"), 0o700); err != nil {
		return "", fmt.Errorf("stage payloads: %w", err)
	}
	args = append(args, "-o", "Dir::State::Lists="+inside(filepath.Join(lists, "lists")))
	for _, p := range paths {
		arg := p
		if t.dir {
			dst := filepath.Join(lists, filepath.Base(p))
			if err := linkOrCopy(p, dst); err != nil {
				return "", fmt.Errorf("stage payload %s: %w", filepath.Base(p), err)
			}
			arg = inside(dst)
		}
		args = append(args, arg)
	}
	return d.run(ctx, t, "apt-get", args...)
}

// dpkgInstall installs with dpkg alone, in Pre-Depends order across the
// payloads: each round installs the packages whose pre-dependencies among
// the payloads are installed already (a cycle goes in one round), and a
// final --configure --pending configures what a round had to leave for a
// later one.
func (d *Deb) dpkgInstall(ctx context.Context, t target, paths []string, infos []debpkg.Info) (string, error) {
	var out strings.Builder
	var lastErr error
	rest := make([]int, len(paths))
	for i := range rest {
		rest[i] = i
	}
	for len(rest) > 0 {
		var round, later []int
		for _, i := range rest {
			waits := false
			for _, j := range rest {
				if j != i && slices.Contains(infos[i].PreDepends, infos[j].Name) {
					waits = true
				}
			}
			if waits {
				later = append(later, i)
			} else {
				round = append(round, i)
			}
		}
		if len(round) == 0 {
			round, later = later, nil
		}
		args := []string{"--install"}
		for _, i := range round {
			args = append(args, paths[i])
		}
		o, err := d.run(ctx, t, "dpkg", args...)
		out.WriteString(o + "\n")
		if ctx.Err() != nil {
			return out.String(), err
		}
		lastErr = err
		rest = later
	}
	if lastErr != nil {
		o, err := d.run(ctx, t, "dpkg", "--configure", "--pending")
		out.WriteString(o + "\n")
		if err != nil {
			lastErr = err
		}
	}
	return strings.TrimSpace(out.String()), lastErr
}

// linkOrCopy makes dst a hard link to src, or a copy when they are on
// different file systems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

// run runs tool ("dpkg" or "apt-get") non-interactively against t and
// returns what it printed (stdout and stderr interleaved, capped). In a
// directory root with apt the root's own tool runs chrooted into it;
// otherwise the host's, with dpkg given --root for a directory root (dpkg
// then chroots into it for maintainer scripts).
func (d *Deb) run(ctx context.Context, t target, tool string, args ...string) (string, error) {
	var cmd *exec.Cmd
	attr := &syscall.SysProcAttr{Setpgid: true}
	switch {
	case t.dir && t.apt:
		if tool == "dpkg" {
			args = append([]string{"--force-confdef", "--force-confold"}, args...)
		}
		cmd = exec.CommandContext(ctx, "/usr/bin/"+tool, args...)
		attr.Chroot = t.root
		cmd.Dir = "/"
	case tool == "dpkg":
		base := []string{"--force-confdef", "--force-confold"}
		if t.dir {
			if err := os.MkdirAll(filepath.Join(t.root, "var", "log"), 0o755); err != nil {
				return "", fmt.Errorf("prepare root: %w", err)
			}
			// dpkg 1.21 otherwise logs a directory root's changes
			// into the host's /var/log/dpkg.log.
			base = append(base, "--root="+t.root, "--log="+filepath.Join(t.root, "var", "log", "dpkg.log"))
		}
		cmd = exec.CommandContext(ctx, d.opts.DpkgPath, append(base, args...)...)
	default:
		cmd = exec.CommandContext(ctx, d.opts.AptGetPath, args...)
	}
	cmd.Env = toolEnv()
	cmd.Stdin = nil // /dev/null: a prompt reads EOF rather than waiting
	buf := &cappedBuffer{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = buf, buf
	// The tool and the maintainer scripts it runs get a process group of
	// their own: dpkg does not pass SIGTERM on to a running script, so on
	// cancellation the whole group gets SIGTERM, then SIGKILL after a
	// grace period. dpkg records each step in its database as it goes; a
	// package interrupted mid-way is left half-installed or
	// half-configured, and the next install of it finishes it.
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		time.AfterFunc(killGrace, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = killGrace + 5*time.Second
	d.log.Debug("run", "cmd", cmd.Args, "chroot", attr.Chroot)
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

var dpkgMsgRE = regexp.MustCompile(`(?m)^dpkg( \(subprocess\))?: `)

// toolReason picks apt's and dpkg's own explanation out of what they
// printed: dpkg's messages (dpkgReason), apt's unmet dependencies and its
// "E: " errors.
func toolReason(out string) string {
	var msgs []string
	if dpkgMsgRE.MatchString(out) {
		msgs = append(msgs, dpkgReason(out))
	}
	unmet := false
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(line, "The following packages have unmet dependencies:") {
			unmet = true
			continue
		}
		if unmet && trimmed != "" && (line[0] == ' ' || line[0] == '\t') {
			msgs = append(msgs, "unmet dependency: "+strings.Join(strings.Fields(trimmed), " "))
			continue
		}
		unmet = false
		if strings.HasPrefix(line, "E: ") {
			msgs = append(msgs, "apt: "+strings.TrimPrefix(line, "E: "))
		}
	}
	if len(msgs) == 0 {
		return dpkgReason(out)
	}
	return strings.Join(msgs, "; ")
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
		if err := debpkg.Check(pkg.Name, pkg.Version, pkg.Arch); err != nil {
			return nil, fmt.Errorf("install record %s: %w", p, err)
		}
	}
	return &rec, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
