package facts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxOSReleaseSize caps how much of an os-release file is read. Real ones are
// under a kilobyte.
const MaxOSReleaseSize = 64 << 10

// ErrOSRelease marks a malformed os-release file.
var ErrOSRelease = errors.New("malformed os-release")

// OSReleaseError is one problem in an os-release file.
type OSReleaseError struct {
	Line   int
	Text   string // the offending line, truncated
	Reason string
}

func (e *OSReleaseError) Error() string {
	return fmt.Sprintf("os-release line %d %q: %s (want KEY=value, KEY=\"value\" or KEY='value')", e.Line, e.Text, e.Reason)
}

func (e *OSReleaseError) Unwrap() error { return ErrOSRelease }

// ParseOSRelease parses the os-release(5) format: one KEY=value assignment a
// line, values unquoted, in double quotes (where \ escapes $ " \ and `) or in
// single quotes (taken literally); blank lines and lines starting with # are
// skipped. Keys are [A-Za-z_][A-Za-z0-9_]*. It reads at most
// MaxOSReleaseSize bytes and never expands variables.
func ParseOSRelease(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxOSReleaseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read os-release: %w", err)
	}
	if len(data) > MaxOSReleaseSize {
		return nil, fmt.Errorf("os-release larger than %d bytes: %w", MaxOSReleaseSize, ErrOSRelease)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxOSReleaseSize+1)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(reason string) error {
			t := line
			if len(t) > 80 {
				t = t[:80] + "…"
			}
			return &OSReleaseError{Line: n, Text: t, Reason: reason}
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, bad("no '='")
		}
		if !validKey(key) {
			return nil, bad("key must be letters, digits and _, not starting with a digit")
		}
		val, err := unquote(raw)
		if err != nil {
			return nil, bad(err.Error())
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read os-release: %w", err)
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote reads one shell-like word: unquoted, "double" or 'single' quoted
// parts may be concatenated (FOO="a"'b'c is "abc"), as a shell would.
func unquote(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '"':
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '"' {
					closed = true
					i++
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("$\"\\`", s[i+1]) >= 0 {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '$' || c == '`' {
					return "", errors.New("unescaped $ or ` in double quotes (no expansion is done)")
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return "", errors.New("unterminated double quote")
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case '\\':
			if i+1 >= len(s) {
				return "", errors.New("trailing backslash")
			}
			b.WriteByte(s[i+1])
			i += 2
		case ' ', '\t', ';', '&', '|', '<', '>', '(', ')', '$', '`':
			return "", fmt.Errorf("unquoted %q in value (quote the value)", c)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}
