package lockdown

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// PackageInstalled is a Debian package that must be installed: a security
// tool (AIDE, fail2ban, ...) the profile relies on. Check reads the root's
// dpkg database. Apply installs it with the root's own apt-get, from the
// sources the root already has configured and apt already verifies (its
// sources.list and keyrings; bulwark names no mirror), without recommended
// packages. For a root other than "/" apt-get runs chrooted in private mount
// and PID namespaces, so maintainer scripts act on the root and start no
// service on the machine running bulwark. The engine journals which
// packages the run installed (dependencies included) and undo purges
// exactly those.
type PackageInstalled struct {
	Type    string `yaml:"type"`
	Package string `yaml:"package"`
}

// Validate checks the parameters.
func (r *PackageInstalled) Validate() error {
	if !packageName().MatchString(r.Package) {
		return fmt.Errorf("package %q must be a Debian package name such as aide", r.Package)
	}
	return nil
}

// Describe says what the resource wants.
func (r *PackageInstalled) Describe() string { return "package " + r.Package + " installed" }

// Check reads the dpkg database.
func (r *PackageInstalled) Check(_ context.Context, env *Env) Verdict {
	st, err := dpkgStatus(env.Tree)
	if errors.Is(err, fs.ErrNotExist) {
		return Verdict{Result: ResultNotApplicable, Detail: "no dpkg database under the root"}
	}
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Expected: "installed", Where: "/var/lib/dpkg/status"}
	if ver, ok := installedVersion(st, r.Package); ok {
		v.Result, v.Actual = ResultPass, "installed "+ver
		return v
	}
	v.Result, v.Actual = ResultFail, "not installed"
	return v
}

// installedVersion returns the version of a package dpkg lists as
// "install ok installed".
func installedVersion(st map[string]string, pkg string) (string, bool) {
	f := strings.Fields(st[pkg])
	if len(f) < 3 || f[2] != "installed" {
		return "", false
	}
	return strings.Join(f[3:], " "), true
}

// installedSet lists the packages dpkg has installed.
func installedSet(t *Tree) (map[string]bool, error) {
	st, err := dpkgStatus(t)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for p := range st {
		if _, ok := installedVersion(st, p); ok {
			out[p] = true
		}
	}
	return out, nil
}

// installedIn lists the packages dpkg has installed under root, read from
// the disk now.
func installedIn(root string) (map[string]bool, error) {
	t, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	return installedSet(t)
}

// heldIn lists the packages dpkg holds files or configuration of under
// root (installed, unpacked, half-installed, config-files: anything but
// not-installed), read from the disk now.
func heldIn(root string) (map[string]bool, error) {
	t, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	st, err := dpkgStatus(t)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for p, s := range st {
		if f := strings.Fields(s); len(f) >= 3 && f[2] != "not-installed" {
			out[p] = true
		}
	}
	return out, nil
}

// Apply asks the engine to install the package.
func (r *PackageInstalled) Apply(_ context.Context, env *Env) error {
	if os.Geteuid() != 0 || env.Cmd == nil {
		return fmt.Errorf("%w: as root, run `apt-get install --no-install-recommends %s`", ErrManual, r.Package)
	}
	env.Tree.Install(r.Package)
	return nil
}

// aptScript runs a command chrooted in the root ($1) with a fresh /proc of a
// private PID namespace and the machine's /dev, in a private mount
// namespace (unshare), so nothing is mounted on the machine and no
// maintainer script sees the machine's processes.
const aptScript = `set -e; r="$1"; shift
mount -t proc proc "$r/proc"
mount --bind /dev "$r/dev"
exec chroot "$r" env DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"`

// inRoot runs a command of the root: directly for "/", else through
// aptScript.
func inRoot(ctx context.Context, cmd Commander, root string, args ...string) ([]byte, error) {
	if root == "/" {
		return cmd.Run(ctx, "env", append([]string{"DEBIAN_FRONTEND=noninteractive"}, args...)...)
	}
	return cmd.Run(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "--pid", "--fork", "sh", "-c", aptScript, "sh", root}, args...)...)
}

// installPackages installs pkgs with the root's apt-get (after refreshing
// its package lists from its own sources) and returns the packages that
// were not installed before and are now, dependencies included, sorted.
func installPackages(ctx context.Context, cmd Commander, root string, pkgs []string) ([]string, error) {
	before, err := installedIn(root)
	if err != nil {
		return nil, err
	}
	var errs []error
	if _, err := inRoot(ctx, cmd, root, "apt-get", "-q", "--error-on=any", "update"); err != nil {
		errs = append(errs, fmt.Errorf("apt-get update: %w", err))
	} else if _, err := inRoot(ctx, cmd, root, append([]string{"apt-get", "-q", "-y", "--no-install-recommends", "install"}, pkgs...)...); err != nil {
		errs = append(errs, fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err))
	} else if _, err := inRoot(ctx, cmd, root, "apt-get", "clean"); err != nil {
		// The downloaded .debs only take space (in an image: in every copy).
		errs = append(errs, fmt.Errorf("apt-get clean: %w", err))
	}
	after, err := installedIn(root)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	var added []string
	for p := range after {
		if !before[p] {
			added = append(added, p)
		}
	}
	sort.Strings(added)
	return added, errors.Join(errs...)
}

// purgePackages purges those of pkgs still installed, all in one dpkg call
// (so their dependencies on each other do not matter). dpkg refuses, and
// nothing is removed, when a package installed since depends on one of them.
func purgePackages(ctx context.Context, cmd Commander, root string, pkgs []string) ([]string, error) {
	held, err := heldIn(root)
	if err != nil {
		return nil, err
	}
	var still []string
	for _, p := range pkgs {
		if held[p] {
			still = append(still, p)
		}
	}
	if len(still) == 0 {
		return nil, nil
	}
	if _, err := inRoot(ctx, cmd, root, append([]string{"dpkg", "--purge"}, still...)...); err != nil {
		return nil, fmt.Errorf("dpkg --purge %s: %w", strings.Join(still, " "), err)
	}
	return still, nil
}

// metaTops are the directories whose state is kept before packages are
// installed: a purge brings back their content but not the modification
// times the package manager changed on the way (ldconfig's cache, the
// directories packages added entries to and removed them from, the PAM
// state pam-auth-update rewrote for libpam-tmpdir, debconf's database).
var metaTops = []string{"etc", "boot", "usr/share/pam-configs", "var/lib/pam", "var/cache/debconf"}

// packagesBefore is the file in a run's directory with the state of
// metaTops, and the packages dpkg had installed, before the run installed
// its packages.
const packagesBefore = "before-packages.json"

// beforePackages is the content of packagesBefore.
type beforePackages struct {
	// Installed are the packages dpkg held (heldIn) before the run.
	Installed []string         `json:"installed"`
	States    map[string]State `json:"states"`
}

// treeStates records every path under the root's metaTops.
func treeStates(root string) (map[string]State, error) {
	out := map[string]State{}
	for _, top := range metaTops {
		base := filepath.Join(root, top)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == base {
					return filepath.SkipDir
				}
				return err
			}
			st, err := diskState(p, true)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out["/"+filepath.ToSlash(rel)] = st
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SavePackagesBefore keeps the state of the root's metaTops, durably,
// before packages are installed.
func (w *RunWriter) SavePackagesBefore(root string) error {
	st, err := treeStates(root)
	if err != nil {
		return fmt.Errorf("record %s before installing: %w", strings.Join(metaTops, ", "), err)
	}
	set, err := heldIn(root)
	if err != nil {
		return err
	}
	bp := beforePackages{States: st}
	for p := range set {
		bp.Installed = append(bp.Installed, p)
	}
	sort.Strings(bp.Installed)
	b, err := json.Marshal(bp)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(w.dir, packagesBefore), b, 0o600)
}

// readPackagesBefore reads what SavePackagesBefore kept; nil if the run
// kept nothing (it installed no package).
func (j *Journal) readPackagesBefore(id string) (*beforePackages, error) {
	b, err := os.ReadFile(filepath.Join(j.runDir(id), packagesBefore))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bp beforePackages
	if err := json.Unmarshal(b, &bp); err != nil {
		return nil, fmt.Errorf("%s of run %s: %w", packagesBefore, id, err)
	}
	return &bp, nil
}

// interruptedInstall returns the packages to purge for a run that asked
// for packages but never recorded what apt-get installed (killed while apt
// ran): the packages dpkg holds now and did not hold before the run (the
// asked-for ones and their dependencies, installed or half-way).
func (j *Journal) interruptedInstall(id, root string) ([]string, error) {
	bp, err := j.readPackagesBefore(id)
	if err != nil || bp == nil {
		return nil, err
	}
	had := map[string]bool{}
	for _, p := range bp.Installed {
		had[p] = true
	}
	held, err := heldIn(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for p := range held {
		if !had[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// restoreTimes puts back the modification times of the paths under the
// root's metaTops that are again exactly as they were before the run's
// packages were installed (content, mode, owner), once they are purged.
func (j *Journal) restoreTimes(id, root string) error {
	bp, err := j.readPackagesBefore(id)
	if err != nil || bp == nil {
		return err
	}
	before := bp.States
	now, err := treeStates(root)
	if err != nil {
		return err
	}
	for _, p := range sortedKeys(before) {
		if err := checkJournalPath(root, p); err != nil {
			return err
		}
		was, cur := before[p], now[p]
		if cur.Exists() && cur.same(was) && cur.MTime != was.MTime && cur.Kind != KindSymlink {
			if err := setMTime(filepath.Join(root, p), was.MTime); err != nil {
				return err
			}
		}
	}
	return nil
}
