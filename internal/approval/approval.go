// Package approval is the document a site server signs for each computer
// group: which updates the group may or must install, remove or ignore, with
// each update's targets (paths, lengths and hashes copied from the vendor's
// signed metadata), deadline and rollout percentage.
//
// It parses and validates that document strictly and encodes it
// deterministically. It must not fetch, sign or verify anything: the site
// repository signs the bytes, and the agent checks every target against the
// vendor repository before it believes them.
package approval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// MaxSize caps an approvals document: about 20,000 approvals of an update
// with two payloads.
const MaxSize = 8 << 20

// Actions an approval can carry.
const (
	ActionInstall   = "install"
	ActionUninstall = "uninstall"
	ActionDecline   = "decline"
)

// Document is one group's approvals, the content of approvals/<group>.json.
type Document struct {
	Group   string     `json:"group"`
	Updates []Approval `json:"updates"`
}

// Approval is what a group is told to do with one update.
type Approval struct {
	Vendor   string     `json:"vendor"`
	ID       string     `json:"id"`
	Action   string     `json:"action"`
	Deadline *time.Time `json:"deadline,omitempty"`
	Rollout  int        `json:"rollout"`
	Targets  []Target   `json:"targets"`
}

// Target is one file of an update as the vendor signed it.
type Target struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid approvals document")

var (
	namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })
	idPattern   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })
	hexPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })
)

// ValidName reports whether s may name a group: it becomes part of a file
// name and a URL. Vendor names are checked by catalog.CheckVendorName.
func ValidName(s string) bool { return namePattern().MatchString(s) }

// Path is the site repository target path of a group's document.
func Path(group string) string { return "approvals/" + group + ".json" }

// Parse reads and validates a document. Unknown fields, duplicate approvals
// and trailing data are refused.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrInvalid, len(data), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the document", ErrInvalid)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Validate checks everything about a document that needs no repository.
func (d *Document) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !ValidName(d.Group) {
		bad("group %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", d.Group)
	}
	seen := map[string]bool{}
	for i, a := range d.Updates {
		at := fmt.Sprintf("updates[%d]", i)
		if err := catalog.CheckVendorName(a.Vendor); err != nil {
			bad("%s.%v", at, err)
		}
		if !idPattern().MatchString(a.ID) {
			bad("%s.id %q is not a valid update id", at, a.ID)
		}
		key := a.Vendor + "/" + a.ID
		if seen[key] {
			bad("%s: %s is approved twice", at, key)
		}
		seen[key] = true
		switch a.Action {
		case ActionInstall, ActionUninstall, ActionDecline:
		default:
			bad("%s.action %q: use install, uninstall or decline", at, a.Action)
		}
		if a.Rollout < 1 || a.Rollout > 100 {
			bad("%s.rollout %d: use a percentage from 1 to 100", at, a.Rollout)
		}
		if a.Action != ActionDecline && len(a.Targets) == 0 {
			bad("%s.targets: an approval to %s lists at least the update's update.json", at, a.Action)
		}
		paths := map[string]bool{}
		for j, t := range a.Targets {
			tat := fmt.Sprintf("%s.targets[%d]", at, j)
			prefix := "updates/" + a.ID + "/"
			rest, ok := strings.CutPrefix(t.Path, prefix)
			if !ok || rest == "" || strings.ContainsAny(rest, "/\\") || rest == "." || rest == ".." {
				bad("%s.path %q: must be %s<file>", tat, t.Path, prefix)
			}
			if paths[t.Path] {
				bad("%s.path %q is listed twice", tat, t.Path)
			}
			paths[t.Path] = true
			if t.Length < 0 {
				bad("%s.length %d: must not be negative", tat, t.Length)
			}
			if !hexPattern().MatchString(t.SHA256) {
				bad("%s.sha256: must be 64 lowercase hex digits", tat)
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// JSON validates the document and encodes it deterministically: approvals
// sorted by vendor and id, targets by path, deadlines in UTC.
func (d *Document) JSON() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	c := Document{Group: d.Group, Updates: make([]Approval, len(d.Updates))}
	for i, a := range d.Updates {
		a.Targets = append([]Target(nil), a.Targets...)
		sort.Slice(a.Targets, func(i, j int) bool { return a.Targets[i].Path < a.Targets[j].Path })
		if a.Deadline != nil {
			t := a.Deadline.UTC().Truncate(time.Second)
			a.Deadline = &t
		}
		if a.Targets == nil {
			a.Targets = []Target{}
		}
		c.Updates[i] = a
	}
	sort.Slice(c.Updates, func(i, j int) bool {
		if c.Updates[i].Vendor != c.Updates[j].Vendor {
			return c.Updates[i].Vendor < c.Updates[j].Vendor
		}
		return c.Updates[i].ID < c.Updates[j].ID
	})
	if c.Updates == nil {
		c.Updates = []Approval{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Find returns the approval of one update, or nil.
func (d *Document) Find(vendor, id string) *Approval {
	for i := range d.Updates {
		if d.Updates[i].Vendor == vendor && d.Updates[i].ID == id {
			return &d.Updates[i]
		}
	}
	return nil
}
