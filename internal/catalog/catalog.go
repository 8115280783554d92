// Package catalog is the model of one Bulwark update: the publisher's YAML,
// the signed JSON form (update.json), their strict parsing and validation, and
// the evaluation of applicability rules against facts the agent supplies.
//
// It must not do I/O beyond the bytes and facts it is given (no file, network
// or dpkg access) and must not know about TUF: signing, hashes of payloads and
// where update.json lives belong to internal/tuf and its callers.
package catalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Size caps for one update document. Callers reading from the network or
// from a user should stop reading past these; the parsers refuse larger input.
const (
	MaxYAMLSize = 1 << 20
	MaxJSONSize = 1 << 20
)

// MaxRuleDepth is how deeply and/or/not rules may nest (a rule directly in
// applies_to is at depth 1).
const MaxRuleDepth = 16

var (
	// ErrTooLarge reports a document larger than MaxYAMLSize or MaxJSONSize.
	ErrTooLarge = errors.New("update metadata too large")
	// ErrInvalid is matched (errors.Is) by every FieldError: the document
	// was read but is not a valid update.
	ErrInvalid = errors.New("invalid update metadata")
)

// Classification is the kind of an update, the categories admins know from
// Windows Update.
type Classification string

// Classifications.
const (
	ClassSecurity    Classification = "security"
	ClassCritical    Classification = "critical"
	ClassRollup      Classification = "rollup"
	ClassServicePack Classification = "service-pack"
	ClassDefinition  Classification = "definition"
	ClassFeature     Classification = "feature"
	ClassDriver      Classification = "driver"
	ClassTool        Classification = "tool"
	ClassUpdate      Classification = "update"
)

var classifications = []Classification{
	ClassSecurity, ClassCritical, ClassRollup, ClassServicePack, ClassDefinition,
	ClassFeature, ClassDriver, ClassTool, ClassUpdate,
}

// ParseClassification returns the classification named s, or an error
// listing the valid names.
func ParseClassification(s string) (Classification, error) {
	for _, c := range classifications {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("unknown classification %q (valid: %s)", s, joinNames(classifications))
}

// Severity is the MSRC severity rating of an update.
type Severity string

// Severities, from most to least severe.
const (
	SeverityCritical    Severity = "critical"
	SeverityImportant   Severity = "important"
	SeverityModerate    Severity = "moderate"
	SeverityLow         Severity = "low"
	SeverityUnspecified Severity = "unspecified"
)

var severities = []Severity{
	SeverityCritical, SeverityImportant, SeverityModerate, SeverityLow, SeverityUnspecified,
}

// Rank orders severities for comparisons such as auto_install_severity:
// critical=4, important=3, moderate=2, low=1, unspecified (and anything
// unknown)=0.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityImportant:
		return 3
	case SeverityModerate:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// ParseSeverity returns the severity named s, or an error listing the valid
// names.
func ParseSeverity(s string) (Severity, error) {
	for _, v := range severities {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown severity %q (valid: %s)", s, joinNames(severities))
}

// Reboot says whether installing an update needs a reboot.
type Reboot string

// Reboot values.
const (
	RebootNever    Reboot = "never"
	RebootRequired Reboot = "required"
	RebootMaybe    Reboot = "maybe"
)

var reboots = []Reboot{RebootNever, RebootRequired, RebootMaybe}

// ParseReboot returns the reboot value named s, or an error listing the
// valid names.
func ParseReboot(s string) (Reboot, error) {
	for _, v := range reboots {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown reboot value %q (valid: %s)", s, joinNames(reboots))
}

// Installer types: each is a handler in the agent.
const (
	InstallerDeb      = "deb"
	InstallerArchive  = "archive"
	InstallerLockdown = "lockdown"
)

var installerTypes = []string{InstallerDeb, InstallerArchive, InstallerLockdown}

// Update is one update as published: the authored fields from YAML plus the
// fields the repository tool sets (Revision, Withdrawn).
//
// Update carries the YAML source positions of its fields (see Line), so two
// Updates with the same content may differ under reflect.DeepEqual; compare
// their JSON() bytes instead.
type Update struct {
	ID             string         `json:"id"`
	Revision       int            `json:"revision,omitempty"`  // set by the repository tool, never in authored YAML
	Withdrawn      bool           `json:"withdrawn,omitempty"` // set by `bulwark repo expire`, never in authored YAML
	Title          string         `json:"title"`
	Advisory       string         `json:"advisory,omitempty"`
	Description    string         `json:"description,omitempty"`
	Product        string         `json:"product"`
	Classification Classification `json:"classification"`
	Severity       Severity       `json:"severity"`
	CVEs           []string       `json:"cves,omitempty"`
	Released       string         `json:"released"` // YYYY-MM-DD
	Supersedes     []string       `json:"supersedes,omitempty"`
	Requires       []string       `json:"requires,omitempty"`
	Reboot         Reboot         `json:"reboot"`
	AppliesTo      []Rule         `json:"applies_to,omitempty"` // all must hold
	Installer      Installer      `json:"installer"`
	Payloads       []Payload      `json:"payloads,omitempty"`
	Uninstallable  bool           `json:"uninstallable,omitempty"`

	lines map[string]int // field path → YAML line
}

// Installer says which agent handler installs the update and how.
type Installer struct {
	Type    string `json:"type"`              // deb, archive or lockdown
	Prefix  string `json:"prefix,omitempty"`  // archive: absolute directory it extracts under
	Profile string `json:"profile,omitempty"` // lockdown: the profile applied
}

// Payload is one file of the update, stored next to update.json as
// updates/<id>/<file>. Length and SHA256 are set by the repository tool from
// the file it publishes, never in authored YAML; when present they must match
// the TUF target of the same path.
type Payload struct {
	File   string `json:"file"`
	Length int64  `json:"length,omitempty"` // bytes
	SHA256 string `json:"sha256,omitempty"` // lowercase hex
	// Deb is what a .deb payload says about itself, read by the
	// repository tool from the file, never in authored YAML. Agents judge
	// from it whether the update's packages are current.
	Deb *PayloadDeb `json:"deb,omitempty"`
}

// PayloadDeb is the control data of a .deb payload.
type PayloadDeb struct {
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
}

// Line returns the YAML line of a field path such as "supersedes",
// "supersedes[1]", "payloads[0].file" or "applies_to[1].deb.version_lt", or 0
// when the update did not come from YAML or the field was not written.
func (u *Update) Line(field string) int {
	return u.lines[field]
}

// FieldError is one problem with one field of an update document.
type FieldError struct {
	File  string // file name given to ParseYAML; empty otherwise
	Line  int    // YAML line; 0 when unknown
	Field string // field path, e.g. "payloads[0].file"; empty for syntax errors
	Msg   string // what is wrong and what would be valid
}

// Error formats the problem as "update.yaml:12: severty: unknown field (valid: …)".
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func joinNames[S ~string](names []S) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	return strings.Join(parts, ", ")
}
