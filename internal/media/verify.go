package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/lockdown/rules"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Trust is what a reader of media already trusts.
type Trust struct {
	// Vendors pins vendor roots by name: the fingerprint of their first
	// root. A vendor on the media that is not pinned here is refused.
	Vendors map[string]string
	// Site pins the site root whose approvals the reader accepts; "" means
	// the media's approvals are not used (and said so in the report).
	Site string
	// Known is the timestamp version of each vendor repository the reader
	// already holds: media with an older one are a rollback.
	Known map[string]int64
	Now   time.Time // zero: time.Now
	// MaxAge bounds how long after its timestamp expired media are
	// accepted; zero: DefaultMaxAge.
	MaxAge time.Duration
	// LengthOnly skips hashing the payloads (importing hashes them again
	// as tuf.Mirror copies them); metadata is always hashed.
	LengthOnly bool
	// Looked says where the pins were looked for, for the report of a
	// vendor with none ("" says nothing).
	Looked string
}

// Report is what Verify found. Problems say what is wrong and where; media
// with any problem must not be used.
type Report struct {
	Media    string         `json:"media"`
	Vendors  []VendorResult `json:"vendors"`
	Site     *SiteResult    `json:"site,omitempty"`
	Files    int            `json:"files"`
	Bytes    int64          `json:"bytes"`
	Problems []*Error       `json:"problems"`
	Notes    []string       `json:"notes,omitempty"`

	dir      string
	manifest *Manifest
	vendors  map[string]*repoState
	roots    map[string][]byte
	site     *repoState
	siteRoot []byte
	docs     map[string]*approval.Document
}

// VendorResult is one vendor repository's part of a report.
type VendorResult struct {
	Name             string `json:"name"`
	RootFingerprint  string `json:"root_fingerprint"`
	Trusted          bool   `json:"trusted"`
	RootVersion      int64  `json:"root_version"`
	TimestampVersion int64  `json:"timestamp_version"`
	Updates          int    `json:"updates"`
	Payloads         int    `json:"payloads"`
	Bytes            int64  `json:"bytes"`
}

// SiteResult is the site approvals' part of a report.
type SiteResult struct {
	RootFingerprint string   `json:"root_fingerprint"`
	Groups          []string `json:"groups"`
	Verified        bool     `json:"verified"`
}

// OK reports whether the media verified with no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Manifest is the media's manifest (nil when it could not be read).
func (r *Report) Manifest() *Manifest { return r.manifest }

// Err is nil for media that verified, else an error listing every problem.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "media %s refused: %d problem(s)", r.Media, len(r.Problems))
	for _, p := range r.Problems {
		b.WriteString("\n  " + p.Error())
	}
	return &RefusedError{Report: r, msg: b.String()}
}

// RefusedError is returned for media with problems; it carries the report.
type RefusedError struct {
	Report *Report
	msg    string
}

func (e *RefusedError) Error() string { return e.msg }

// Verify checks media in dir offline against what the reader trusts: the
// manifest and every file's length and hash, each vendor's root against its
// pin (a vendor not pinned, or another root, is refused), the root chain,
// timestamp, snapshot, targets and bins, every chosen update and payload
// against the signed metadata, the site's approvals when the site root is
// pinned, and the lockdown rules against this bulwark's built-in ones.
// It returns an error only when dir cannot be read at all.
func Verify(ctx context.Context, dir string, t Trust) (*Report, error) {
	if t.Now.IsZero() {
		t.Now = time.Now()
	}
	if t.MaxAge == 0 {
		t.MaxAge = DefaultMaxAge
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("media %s: not a directory (an .iso is read with Open)", dir)
	}
	r := &Report{Media: dir, dir: dir, vendors: map[string]*repoState{}, roots: map[string][]byte{}, docs: map[string]*approval.Document{}}
	bad := func(where, format string, args ...any) {
		r.Problems = append(r.Problems, errAt(where, format, args...))
	}

	mb, err := capread.File(filepath.Join(dir, ManifestFile), MaxManifestSize)
	if err != nil {
		bad(ManifestFile, "cannot read: %v (not Bulwark media?)", errors.Unwrap(err))
		return r, nil
	}
	m, err := ParseManifest(mb)
	if err != nil {
		bad(ManifestFile, "%v", err)
		return r, nil
	}
	r.manifest = m

	// Files: exactly those the manifest lists, each with its length and hash.
	listed := map[string]FileEntry{}
	for _, f := range m.Files {
		listed[f.Path] = f
	}
	found := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == ManifestFile {
			return nil
		}
		if !d.Type().IsRegular() {
			bad(rel, "not a regular file (%s)", d.Type())
			return nil
		}
		f, ok := listed[rel]
		if !ok {
			bad(rel, "not listed in %s: an extra file", ManifestFile)
			return nil
		}
		found[rel] = true
		lengthOnly := t.LengthOnly && isPayload(rel)
		n, sum, err := hashFile(p, lengthOnly)
		if err != nil {
			bad(rel, "cannot read: %v", err)
			return nil
		}
		r.Files++
		r.Bytes += n
		if n != f.Length || (!lengthOnly && sum != f.SHA256) {
			bad(rel, "is %d bytes sha256 %s, %s lists %d bytes sha256 %s: changed after the media were made", n, sum, ManifestFile, f.Length, f.SHA256)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("media %s: %w", dir, err)
	}
	for _, f := range m.Files {
		if !found[f.Path] {
			bad(f.Path, "missing (listed in %s)", ManifestFile)
		}
	}

	fr := freshness{now: t.Now, maxAge: t.MaxAge}
	if ents, err := os.ReadDir(filepath.Join(dir, VendorsDir)); err == nil {
		for _, e := range ents {
			if m.Vendor(e.Name()) == nil {
				bad(pathJoin(VendorsDir, e.Name()), "a vendor repository %s does not list", ManifestFile)
			}
		}
	}
	for _, mv := range m.Vendors {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.verifyVendor(mv, t, fr)
	}
	if m.Site != nil {
		r.verifySite(m.Site, t, fr)
	}
	r.verifyLockdown(m)
	return r, nil
}

func (r *Report) bad(where, format string, args ...any) {
	r.Problems = append(r.Problems, errAt(where, format, args...))
}

func (r *Report) verifyVendor(mv Vendor, t Trust, fr freshness) {
	base := pathJoin(VendorsDir, mv.Name)
	res := VendorResult{Name: mv.Name, RootFingerprint: mv.RootFingerprint}
	defer func() { r.Vendors = append(r.Vendors, res) }()
	pin, ok := t.Vendors[mv.Name]
	if !ok {
		looked := ""
		if t.Looked != "" {
			looked = " (looked in: " + t.Looked + ")"
		}
		r.bad(base, "vendor %s is not trusted here: no root is pinned for it%s, and media never add one (pin it with --vendor %s=sha256:… after checking the fingerprint with the vendor, or in the agent's vendor_pins or the server's upstream.vendors)", mv.Name, looked, mv.Name)
		return
	}
	rootRel := pathJoin(base, tuf.MetadataDir, "1.root.json")
	root, err := capread.File(filepath.Join(r.dir, filepath.FromSlash(rootRel)), maxRootSize)
	if err != nil {
		r.bad(rootRel, "cannot read the vendor's first root: %v", errors.Unwrap(err))
		return
	}
	if fp := tuf.RootFingerprint(root); fp != pin {
		r.bad(rootRel, "root fingerprint %s is not the pinned %s: a foreign root", fp, pin)
		return
	}
	if mv.RootFingerprint != pin {
		r.bad(ManifestFile, "vendor %s: root_fingerprint %s is not the root on the media (%s)", mv.Name, mv.RootFingerprint, pin)
	}
	res.Trusted = true
	st, err := loadRepo(filepath.Join(r.dir, VendorsDir, mv.Name), base, root, fr)
	if err != nil {
		r.problem(err)
		return
	}
	res.RootVersion, res.TimestampVersion = st.rootV, st.tsVersion
	if k := t.Known[mv.Name]; k > st.tsVersion {
		r.bad(pathJoin(base, tuf.MetadataDir, "timestamp.json"), "version %d is older than version %d already trusted here: a rollback to older metadata", st.tsVersion, k)
		return
	}
	if st.tsVersion != mv.TimestampVersion || st.rootV != mv.RootVersion {
		r.bad(ManifestFile, "vendor %s: lists root %d timestamp %d, the media's metadata are root %d timestamp %d", mv.Name, mv.RootVersion, mv.TimestampVersion, st.rootV, st.tsVersion)
	}
	// Every file under targets/ must be a target the vendor signs, and
	// every metadata file part of the verified state.
	signed := map[string]bool{}
	for _, tf := range st.targets {
		signed[filepath.ToSlash(targetFile(tf))] = true
	}
	for _, f := range r.manifest.Files {
		rest, ok := strings.CutPrefix(f.Path, base+"/")
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, tuf.TargetsDir+"/") && !signed[rest] {
			r.bad(f.Path, "not a target vendor %s signs", mv.Name)
		}
		if name, ok := strings.CutPrefix(rest, tuf.MetadataDir+"/"); ok && !slices.Contains(st.meta, name) {
			r.bad(f.Path, "not part of vendor %s's verified metadata", mv.Name)
		}
	}
	for _, mu := range mv.Updates {
		tf := st.targets[tuf.UpdatePath(mu.ID)]
		if tf == nil {
			r.bad(base, "update %s is not signed by vendor %s", mu.ID, mv.Name)
			continue
		}
		rel := pathJoin(base, filepath.ToSlash(targetFile(tf)))
		b, err := capread.File(filepath.Join(r.dir, filepath.FromSlash(rel)), min(tf.Length, catalog.MaxJSONSize))
		if err != nil {
			r.bad(rel, "update %s: cannot read its update.json: %v", mu.ID, errors.Unwrap(err))
			continue
		}
		if err := tf.VerifyLengthHashes(b); err != nil {
			r.bad(rel, "update %s: update.json does not match its signed hash", mu.ID)
			continue
		}
		u, err := catalog.ParseJSON(b)
		if err != nil || u.ID != mu.ID {
			r.bad(rel, "update %s: not a valid update.json for it: %v", mu.ID, err)
			continue
		}
		res.Updates++
		for _, pl := range u.Payloads {
			ptf := st.targets[tuf.PayloadPath(mu.ID, pl.File)]
			if ptf == nil || ptf.Length != pl.Length || hex.EncodeToString(ptf.Hashes["sha256"]) != pl.SHA256 {
				r.bad(rel, "update %s: payload %s: %v: update.json and the signed target disagree", mu.ID, pl.File, tuf.ErrMismatch)
				continue
			}
			prel := pathJoin(base, filepath.ToSlash(targetFile(ptf)))
			f, ok := r.entry(prel)
			if !ok {
				r.bad(prel, "missing: payload %s of update %s", pl.File, mu.ID)
				continue
			}
			if f.Length != ptf.Length || f.SHA256 != pl.SHA256 {
				r.bad(prel, "payload %s of update %s is not the signed file (%d bytes sha256 %s signed)", pl.File, mu.ID, ptf.Length, pl.SHA256)
				continue
			}
			res.Payloads++
			res.Bytes += ptf.Length
		}
	}
	r.vendors[mv.Name] = st
	r.roots[mv.Name] = root
}

// entry is the manifest entry of a file that is on the media (its length
// and hash were checked against the manifest by the walk).
func (r *Report) entry(rel string) (FileEntry, bool) {
	i, ok := slices.BinarySearchFunc(r.manifest.Files, rel, func(f FileEntry, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return FileEntry{}, false
	}
	if _, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(rel))); err != nil {
		return FileEntry{}, false
	}
	return r.manifest.Files[i], true
}

func (r *Report) verifySite(ms *Site, t Trust, fr freshness) {
	res := &SiteResult{RootFingerprint: ms.RootFingerprint, Groups: ms.Groups}
	r.Site = res
	if t.Site == "" {
		r.Notes = append(r.Notes, fmt.Sprintf("site approvals for %s not used: no site root pinned (pin %s with --site to use them)", strings.Join(ms.Groups, ", "), ms.RootFingerprint))
		return
	}
	rootRel := pathJoin(SiteDir, tuf.MetadataDir, "1.root.json")
	root, err := capread.File(filepath.Join(r.dir, filepath.FromSlash(rootRel)), maxRootSize)
	if err != nil {
		r.bad(rootRel, "cannot read the site's first root: %v", errors.Unwrap(err))
		return
	}
	if fp := tuf.RootFingerprint(root); fp != t.Site {
		r.bad(rootRel, "site root fingerprint %s is not the pinned %s: another site's approvals", fp, t.Site)
		return
	}
	st, err := loadRepo(filepath.Join(r.dir, SiteDir), SiteDir, root, fr)
	if err != nil {
		r.problem(err)
		return
	}
	for _, g := range ms.Groups {
		tf := st.targets[approval.Path(g)]
		if tf == nil {
			r.bad(SiteDir, "group %s: the site signs no approvals for it", g)
			continue
		}
		rel := pathJoin(SiteDir, filepath.ToSlash(targetFile(tf)))
		b, err := capread.File(filepath.Join(r.dir, filepath.FromSlash(rel)), approval.MaxSize)
		if err != nil {
			r.bad(rel, "group %s: cannot read: %v", g, errors.Unwrap(err))
			continue
		}
		if err := tf.VerifyLengthHashes(b); err != nil {
			r.bad(rel, "group %s: does not match its signed hash", g)
			continue
		}
		doc, err := approval.Parse(b)
		if err != nil || doc.Group != g {
			r.bad(rel, "group %s: not its approvals document: %v", g, err)
			continue
		}
		r.docs[g] = doc
	}
	r.site, r.siteRoot = st, root
	res.Verified = len(r.docs) == len(ms.Groups)
}

func (r *Report) verifyLockdown(m *Manifest) {
	for _, name := range m.Lockdown {
		rel := pathJoin(LockdownDir, name)
		want, err := fs.ReadFile(rules.FS, name)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: not among this bulwark's built-in rules (made by another version)", rel))
			continue
		}
		got, err := capread.File(filepath.Join(r.dir, filepath.FromSlash(rel)), 4<<20)
		if err != nil {
			continue // reported by the file walk
		}
		if string(got) != string(want) {
			r.bad(rel, "differs from this bulwark's built-in rules: lockdown rules on media must be those of the bulwark that reads them")
		}
	}
}

// problem records an error from loadRepo (which says where) or another.
func (r *Report) problem(err error) {
	var e *Error
	if errors.As(err, &e) {
		r.Problems = append(r.Problems, e)
		return
	}
	r.Problems = append(r.Problems, errAt(".", "%v", err))
}

// isPayload reports whether a media path is a payload (not metadata, not
// update.json, not an approvals document).
func isPayload(rel string) bool {
	return strings.HasPrefix(rel, VendorsDir+"/") && strings.Contains(rel, "/"+tuf.TargetsDir+"/updates/") && !strings.HasSuffix(rel, ".update.json")
}

// hashFile returns a file's length and, unless lengthOnly, its SHA-256.
func hashFile(p string, lengthOnly bool) (int64, string, error) {
	if lengthOnly {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, "", err
		}
		return fi.Size(), "", nil
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Groups lists the groups whose approvals verified.
func (r *Report) Groups() []string {
	var g []string
	for k := range r.docs {
		g = append(g, k)
	}
	sort.Strings(g)
	return g
}

// Approvals is the verified approvals document of a group on the media, or
// nil when the site root was not pinned or the group is not there.
func (r *Report) Approvals(group string) *approval.Document { return r.docs[group] }
