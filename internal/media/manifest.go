// Package media makes, verifies and reads offline media: a directory (or an
// ISO 9660 image of it) that carries vendor repositories' TUF metadata and
// chosen payloads, a site's signed approvals, the lockdown rules and a
// manifest, for disconnected servers and lone machines.
//
// Media are only a carrier. Everything on them is verified from roots the
// reader already trusts (a server's pinned vendor roots, an agent's, or a
// fingerprint given on the command line); the manifest is a table of
// contents and a consistency check, never a source of trust, and media can
// never introduce a vendor root. It must not install, serve or sign
// anything itself: importing goes through tuf.Mirror, installing through the
// agent's plan and pass.
package media

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Format is the manifest's format line; media of another format are refused.
const Format = "bulwark-media 1"

// Names of the fixed files and directories of media.
const (
	ManifestFile = "MANIFEST.json"
	ReadmeFile   = "README.txt"
	VendorsDir   = "vendors"
	SiteDir      = "site"
	LockdownDir  = "lockdown"
)

// MaxManifestSize caps MANIFEST.json: about 200,000 files.
const MaxManifestSize = 64 << 20

// Manifest is MANIFEST.json: what the media carry and every file's length
// and SHA-256. It is deterministic: the same media give the same bytes.
type Manifest struct {
	Format    string      `json:"format"`
	Selection Selection   `json:"selection"`
	Vendors   []Vendor    `json:"vendors"`
	Site      *Site       `json:"site,omitempty"`
	Lockdown  []string    `json:"lockdown"` // rule and profile files under lockdown/
	Files     []FileEntry `json:"files"`
}

// Selection records how the updates were chosen (for the person reading).
type Selection struct {
	Vendors         []string `json:"vendors,omitempty"`
	Products        []string `json:"products,omitempty"`
	Classifications []string `json:"classifications,omitempty"`
	Severities      []string `json:"severities,omitempty"`
	Groups          []string `json:"groups,omitempty"`
	Security        bool     `json:"security,omitempty"`
	All             bool     `json:"all,omitempty"`
	Since           string   `json:"since,omitempty"`
}

// Vendor is one vendor repository on the media.
type Vendor struct {
	Name             string   `json:"name"`
	RootFingerprint  string   `json:"root_fingerprint"` // sha256 of metadata/1.root.json
	RootVersion      int64    `json:"root_version"`
	TimestampVersion int64    `json:"timestamp_version"`
	Updates          []Update `json:"updates"` // the chosen ones, whose payloads are on the media
}

// Update is one chosen update.
type Update struct {
	ID             string `json:"id"`
	Title          string `json:"title"`
	Product        string `json:"product"`
	Classification string `json:"classification"`
	Severity       string `json:"severity"`
	Released       string `json:"released"`
	Bytes          int64  `json:"bytes"` // its payloads
}

// Site is the site repository's part: approvals for the chosen groups.
type Site struct {
	RootFingerprint  string   `json:"root_fingerprint"`
	TimestampVersion int64    `json:"timestamp_version"`
	Groups           []string `json:"groups"`
}

// FileEntry is one file of the media.
type FileEntry struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

var (
	hexPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })
	fpPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })
	idPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })
)

// ErrManifest is wrapped by every problem with MANIFEST.json itself.
var ErrManifest = errors.New("invalid " + ManifestFile)

// ParseManifest reads and checks MANIFEST.json strictly: unknown fields,
// trailing data, unsafe or duplicate paths, unsorted lists and malformed
// names, hashes or fingerprints are refused with what would be valid.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrManifest, len(data), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrManifest)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Format != Format {
		return fmt.Errorf("format %q: this bulwark reads %q; use the bulwark version that made the media", m.Format, Format)
	}
	var names []string
	for i, v := range m.Vendors {
		if err := catalog.CheckVendorName(v.Name); err != nil {
			return fmt.Errorf("vendors[%d].name: %w", i, err)
		}
		if !fpPattern().MatchString(v.RootFingerprint) {
			return fmt.Errorf("vendors[%d].root_fingerprint %q: want sha256:<64 lowercase hex digits>", i, v.RootFingerprint)
		}
		if v.RootVersion < 1 || v.TimestampVersion < 1 {
			return fmt.Errorf("vendors[%d]: root and timestamp versions must be at least 1", i)
		}
		names = append(names, v.Name)
		var ids []string
		for j, u := range v.Updates {
			if !idPattern().MatchString(u.ID) {
				return fmt.Errorf("vendors[%d].updates[%d].id %q: use letters, digits, '.', '_' or '-'", i, j, u.ID)
			}
			if u.Bytes < 0 {
				return fmt.Errorf("vendors[%d].updates[%d].bytes: negative", i, j)
			}
			ids = append(ids, u.ID)
		}
		if err := sortedUnique(ids, fmt.Sprintf("vendors[%d].updates ids", i)); err != nil {
			return err
		}
	}
	if err := sortedUnique(names, "vendor names"); err != nil {
		return err
	}
	if s := m.Site; s != nil {
		if !fpPattern().MatchString(s.RootFingerprint) {
			return fmt.Errorf("site.root_fingerprint %q: want sha256:<64 lowercase hex digits>", s.RootFingerprint)
		}
		for _, g := range s.Groups {
			if !approval.ValidName(g) {
				return fmt.Errorf("site.groups: %q is not a valid group name", g)
			}
		}
		if err := sortedUnique(s.Groups, "site groups"); err != nil {
			return err
		}
	}
	for _, f := range m.Lockdown {
		if strings.ContainsAny(f, "/\\") || !strings.HasSuffix(f, ".yaml") || f == ".yaml" {
			return fmt.Errorf("lockdown: %q is not a plain *.yaml file name", f)
		}
	}
	if err := sortedUnique(m.Lockdown, "lockdown files"); err != nil {
		return err
	}
	var paths []string
	for i, f := range m.Files {
		if err := safePath(f.Path); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
		if f.Path == ManifestFile {
			return fmt.Errorf("files[%d]: %s does not list itself", i, ManifestFile)
		}
		if f.Length < 0 {
			return fmt.Errorf("files[%d] %s: negative length", i, f.Path)
		}
		if !hexPattern().MatchString(f.SHA256) {
			return fmt.Errorf("files[%d] %s: sha256 %q: want 64 lowercase hex digits", i, f.Path, f.SHA256)
		}
		paths = append(paths, f.Path)
	}
	return sortedUnique(paths, "files")
}

// safePath accepts a relative slash-separated path with no empty, "." or
// ".." element, no backslash or NUL and no hidden element.
func safePath(p string) error {
	if p == "" || len(p) > 1024 || path.IsAbs(p) || strings.ContainsAny(p, "\\\x00") || path.Clean(p) != p {
		return fmt.Errorf("path %q: want a clean relative path such as vendors/x/metadata/root.json", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." || strings.HasPrefix(el, ".") {
			return fmt.Errorf("path %q: no element may be empty, '.', '..' or start with '.'", p)
		}
	}
	return nil
}

func sortedUnique(s []string, what string) error {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return fmt.Errorf("%s: %q and %q are not sorted and unique", what, s[i-1], s[i])
		}
	}
	return nil
}

// JSON encodes the manifest deterministically (sorted lists, fixed
// indentation, trailing newline).
func (m *Manifest) JSON() ([]byte, error) {
	slices.SortFunc(m.Files, func(a, b FileEntry) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(m.Vendors, func(a, b Vendor) int { return strings.Compare(a.Name, b.Name) })
	for i := range m.Vendors {
		slices.SortFunc(m.Vendors[i].Updates, func(a, b Update) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.Sort(m.Lockdown)
	if m.Site != nil {
		slices.Sort(m.Site.Groups)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Vendor returns the named vendor's entry, or nil.
func (m *Manifest) Vendor(name string) *Vendor {
	for i := range m.Vendors {
		if m.Vendors[i].Name == name {
			return &m.Vendors[i]
		}
	}
	return nil
}
