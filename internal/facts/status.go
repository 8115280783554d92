package facts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on the dpkg status database. A full desktop's is a few megabytes.
const (
	MaxStatusSize = 256 << 20 // bytes in the whole file
	maxStatusLine = 1 << 20   // bytes in one line
)

// ErrStatus marks a malformed dpkg status database.
var ErrStatus = errors.New("malformed dpkg status")

// StatusError is one problem in a dpkg status database.
type StatusError struct {
	Line   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("dpkg status line %d: %s", e.Line, e.Reason)
}

func (e *StatusError) Unwrap() error { return ErrStatus }

// Package is one entry of the dpkg status database.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// Status is dpkg's "want flag state" triple, e.g. "install ok installed"
	// or "install ok unpacked".
	Status string `json:"status,omitempty"`
}

// Installed reports whether dpkg considers the package installed: status
// "install ok installed" or "hold ok installed". A package that is unpacked,
// half-configured or only has config files left is not.
func (p Package) Installed() bool {
	f := strings.Fields(p.Status)
	return len(f) == 3 && f[1] == "ok" && f[2] == "installed"
}

// ParseStatus reads a dpkg status database (deb822 paragraphs separated by
// blank lines; continuation lines start with a space or tab) and returns one
// Package per paragraph that has a Package field. It keeps only the fields it
// needs, reads at most MaxStatusSize bytes, and refuses lines longer than 1
// MiB, a paragraph without Package or with a repeated field, and a field
// line without a colon.
func ParseStatus(r io.Reader) ([]Package, error) {
	lr := &io.LimitedReader{R: r, N: MaxStatusSize + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), maxStatusLine)
	var (
		out    []Package
		cur    Package
		seen   = map[string]bool{}
		inPara bool
		start  int
		n      int
	)
	flush := func() error {
		if !inPara {
			return nil
		}
		inPara = false
		if cur.Name == "" {
			return &StatusError{Line: start, Reason: "paragraph has no Package field"}
		}
		out = append(out, cur)
		cur = Package{}
		clear(seen)
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !inPara {
				return nil, &StatusError{Line: n, Reason: "continuation line outside a paragraph"}
			}
			continue // continuation of a field this parser does not keep
		}
		if !inPara {
			inPara, start = true, n
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, &StatusError{Line: n, Reason: fmt.Sprintf("%q is not a 'Field: value' line", trunc(line))}
		}
		key := strings.ToLower(name)
		if seen[key] {
			return nil, &StatusError{Line: n, Reason: fmt.Sprintf("field %s repeated in one paragraph", trunc(name))}
		}
		seen[key] = true
		value = strings.TrimSpace(value)
		switch key {
		case "package":
			if !validPackageName(value) {
				return nil, &StatusError{Line: n, Reason: fmt.Sprintf("package name %q: want lowercase letters, digits, '+', '-', '.'", trunc(value))}
			}
			cur.Name = value
		case "version":
			cur.Version = value
		case "architecture":
			cur.Arch = value
		case "status":
			cur.Status = value
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &StatusError{Line: n + 1, Reason: fmt.Sprintf("line longer than %d bytes", maxStatusLine)}
		}
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("dpkg status larger than %d bytes: %w", MaxStatusSize, ErrStatus)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func validPackageName(s string) bool {
	if len(s) < 2 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '+' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
