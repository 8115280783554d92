// Package facts is what the agent knows about the machine it manages, read
// from a root directory ("/" or a directory root such as a golden image):
// the OS from os-release, the architecture, the Debian packages in the dpkg
// status database, the Bulwark updates the agent says are installed, and an
// inventory for reports. Machine implements catalog.Facts.
//
// It only reads: it must not change the machine, run anything but
// `dpkg --print-architecture`, or trust what it reads (every file is parsed
// with size caps and strict parsers).
package facts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Config configures a Machine.
type Config struct {
	Root   string       // "/" (default) or a directory root
	Logger *slog.Logger // nil: discard
	// Arch is the dpkg architecture (amd64, arm64, …). Empty: ask
	// `dpkg --print-architecture`, which answers for this machine's dpkg,
	// so directory roots of another architecture must set it.
	Arch     string
	DpkgPath string // default "dpkg"
	// Installed lists the Bulwark update IDs the agent has installed
	// (UpdateInstalled); SetInstalled replaces it.
	Installed []string
}

// Machine reads facts from one root. It is safe for concurrent use. The dpkg
// status database is parsed again only when the file changes.
type Machine struct {
	root, dpkg string
	log        *slog.Logger

	mu        sync.Mutex
	arch      string
	installed map[string]bool
	status    statusCache
}

type statusCache struct {
	key  string // size, mtime and inode of the file parsed
	pkgs map[string][]Package
	list []Package
}

var _ catalog.Facts = (*Machine)(nil)

// New returns a Machine for cfg.Root. It reads nothing yet.
func New(cfg Config) (*Machine, error) {
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("facts root %q: want an absolute directory such as / or /srv/images/web", root)
	}
	root = filepath.Clean(root)
	if st, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("facts root: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("facts root %q: not a directory", root)
	}
	m := &Machine{root: root, dpkg: cfg.DpkgPath, log: cfg.Logger, arch: cfg.Arch}
	if m.dpkg == "" {
		m.dpkg = "dpkg"
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("root", root)
	m.SetInstalled(cfg.Installed)
	return m, nil
}

// Root returns the machine's root directory.
func (m *Machine) Root() string { return m.root }

// SetInstalled replaces the set of Bulwark updates installed.
func (m *Machine) SetInstalled(ids []string) {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	m.mu.Lock()
	m.installed = set
	m.mu.Unlock()
}

// UpdateInstalled reports whether the agent said update id is installed.
func (m *Machine) UpdateInstalled(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.installed[id]
}

func (m *Machine) path(rel string) string {
	return filepath.Join(m.root, filepath.FromSlash(rel))
}

// ReadOSRelease parses ROOT/etc/os-release, or ROOT/usr/lib/os-release when
// the first does not exist.
func (m *Machine) ReadOSRelease() (map[string]string, error) {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		f, err := os.Open(m.path(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open os-release: %w", err)
		}
		kv, err := ParseOSRelease(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.path(p), err)
		}
		return kv, nil
	}
	return nil, fmt.Errorf("os-release: neither %s nor %s exists", m.path("etc/os-release"), m.path("usr/lib/os-release"))
}

// OSRelease returns ID and VERSION_ID from os-release, or empty strings when
// it cannot be read (logged), so that OS rules do not match.
func (m *Machine) OSRelease() (id, versionID string) {
	kv, err := m.ReadOSRelease()
	if err != nil {
		m.log.Warn("read os-release", "err", err)
		return "", ""
	}
	return kv["ID"], kv["VERSION_ID"]
}

// Arch returns the dpkg architecture: the configured one, or what
// `dpkg --print-architecture` prints (asked once), or "" when that fails
// (logged), so that architecture rules other than "all" do not match.
func (m *Machine) Arch() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.arch != "" {
		return m.arch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.dpkg, "--print-architecture").Output()
	if err != nil {
		m.log.Warn("dpkg --print-architecture", "err", err)
		return ""
	}
	a := strings.TrimSpace(string(out))
	if !validArch(a) {
		m.log.Warn("dpkg --print-architecture printed an unexpected value", "value", trunc(a))
		return ""
	}
	m.arch = a
	return a
}

func validArch(a string) bool {
	if a == "" || len(a) > 64 {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// packages returns the parsed dpkg database, parsing it again when the
// status file or the journal directory changed. A missing database means no
// packages.
func (m *Machine) packages() (map[string][]Package, []Package, error) {
	admin := m.path("var/lib/dpkg")
	key := ""
	for _, p := range []string{filepath.Join(admin, "status"), filepath.Join(admin, "updates")} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			key += "-|"
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("dpkg database: %w", err)
		}
		key += fmt.Sprintf("%d/%d", st.Size(), st.ModTime().UnixNano())
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			key += fmt.Sprintf("/%d/%d", s.Dev, s.Ino)
		}
		key += "|"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status.key == key && m.status.list != nil {
		return m.status.pkgs, m.status.list, nil
	}
	list, err := ReadDatabase(m.root)
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string][]Package, len(list))
	for _, pkg := range list {
		byName[pkg.Name] = append(byName[pkg.Name], pkg)
	}
	m.status = statusCache{key: key, pkgs: byName, list: list}
	return byName, list, nil
}

// ReadDatabase reads the dpkg database of root: var/lib/dpkg/status, then
// the journal entries dpkg has not yet merged into it
// (var/lib/dpkg/updates/NNNN, in order, each replacing the records of the
// packages it names), as dpkg itself does when it starts. An interrupted
// dpkg leaves its latest changes only in the journal. A root without a
// database has no packages.
func ReadDatabase(root string) ([]Package, error) {
	admin := filepath.Join(root, "var", "lib", "dpkg")
	list, err := parseFile(filepath.Join(admin, "status"))
	if errors.Is(err, fs.ErrNotExist) {
		list, err = []Package{}, nil
	}
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(admin, "updates"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dpkg journal: %w", err)
	}
	var journal []string
	for _, e := range ents {
		if isJournalName(e.Name()) && e.Type().IsRegular() {
			journal = append(journal, e.Name())
		}
	}
	if len(journal) == 0 {
		return list, nil
	}
	if len(journal) > maxJournalEntries {
		return nil, fmt.Errorf("dpkg journal %s: %d entries, more than %d: %w", filepath.Join(admin, "updates"), len(journal), maxJournalEntries, ErrStatus)
	}
	slices.Sort(journal) // fixed-width decimal names sort in order
	index := make(map[string]int, len(list))
	for i, p := range list {
		index[p.Name+":"+p.Arch] = i
	}
	for _, name := range journal {
		recs, err := parseFile(filepath.Join(admin, "updates", name))
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			k := r.Name + ":" + r.Arch
			if i, ok := index[k]; ok {
				list[i] = r
			} else {
				index[k] = len(list)
				list = append(list, r)
			}
		}
	}
	return list, nil
}

// maxJournalEntries caps the journal files read; dpkg merges them into the
// status file every few hundred.
const maxJournalEntries = 10_000

func isJournalName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseFile(p string) ([]Package, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list, err := ParseStatus(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return list, nil
}

// DebPackage reports whether package name ("libssl3", or "libssl3:amd64"
// for one architecture) is installed ("install ok installed") in the root's
// dpkg database, and its version. When several architectures of a package
// are installed and none is asked for, the machine's own architecture wins,
// then "all", then the first.
func (m *Machine) DebPackage(name string) (bool, string, error) {
	base, arch, _ := strings.Cut(name, ":")
	if !validPackageName(base) || (arch != "" && !validArch(arch)) {
		return false, "", fmt.Errorf("package name %q: want a Debian package name such as libssl3, optionally with :ARCH", name)
	}
	byName, _, err := m.packages()
	if err != nil {
		return false, "", err
	}
	var found []Package
	for _, p := range byName[base] {
		if p.Installed() && (arch == "" || p.Arch == arch) {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return false, "", nil
	}
	if len(found) > 1 {
		native := m.Arch()
		for _, want := range []string{native, "all"} {
			for _, p := range found {
				if p.Arch == want {
					return true, p.Version, nil
				}
			}
		}
	}
	return true, found[0].Version, nil
}

// Inventory is what an agent reports about its machine.
type Inventory struct {
	OSID         string    `json:"os_id"`
	OSVersionID  string    `json:"os_version_id"`
	OSPrettyName string    `json:"os_pretty_name"`
	Kernel       string    `json:"kernel,omitempty"` // running kernel release; only for root "/"
	Arch         string    `json:"arch"`
	Hostname     string    `json:"hostname"`
	MachineID    string    `json:"machine_id"`
	Packages     []Package `json:"packages"` // installed ones, in status-file order
}

// Inventory reads everything an inventory report needs. A missing
// os-release, hostname or machine-id leaves its fields empty; a malformed
// os-release or dpkg database is an error.
func (m *Machine) Inventory() (Inventory, error) {
	var inv Inventory
	kv, err := m.ReadOSRelease()
	switch {
	case err == nil:
		inv.OSID, inv.OSVersionID, inv.OSPrettyName = kv["ID"], kv["VERSION_ID"], kv["PRETTY_NAME"]
	case errors.Is(err, ErrOSRelease):
		return Inventory{}, err
	default:
		m.log.Warn("inventory without os-release", "err", err)
	}
	inv.Arch = m.Arch()
	if m.root == "/" {
		inv.Kernel = readLine(m.log, "/proc/sys/kernel/osrelease")
		if h, err := os.Hostname(); err == nil {
			inv.Hostname = h
		}
	} else {
		inv.Hostname = readLine(m.log, m.path("etc/hostname"))
	}
	inv.MachineID = readLine(m.log, m.path("etc/machine-id"))
	_, list, err := m.packages()
	if err != nil {
		return Inventory{}, err
	}
	inv.Packages = []Package{}
	for _, p := range list {
		if p.Installed() {
			inv.Packages = append(inv.Packages, p)
		}
	}
	return inv, nil
}

// readLine returns the first line of a small file, trimmed, at most 256
// bytes, or "" when it cannot be read.
func readLine(log *slog.Logger, path string) string {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("read", "path", path, "err", err)
		}
		return ""
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	return strings.TrimSpace(line)
}
