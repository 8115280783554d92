// Package termtext makes strings that came from elsewhere (an agent's
// report, a server's answer) safe to print on a terminal: control
// characters, terminal escape sequences, carriage returns, invalid UTF-8
// and bidirectional overrides are shown as Go-style escapes instead of
// being interpreted, so such a string cannot draw fake lines, hide text,
// set the window title or reorder what an admin reads.
//
// It must not be used for JSON output, which encoding/json already escapes.
package termtext

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every character that a terminal would interpret
// written as an escape: \xNN for C0 and C1 controls (newline and tab
// included), DEL and bytes that are not UTF-8, \uNNNN for the Unicode
// bidirectional controls. A backslash is left as it is. Printable text is
// unchanged.
func Escape(s string) string {
	if safe(s, false) {
		return s
	}
	return escape(s, false)
}

// NewWriter returns a writer that escapes what is written to w as Escape
// does, except newlines and tabs, which the caller's own layout uses. Use it
// around every text output that includes strings from elsewhere; strings
// that must stay on one line or in one column also go through Escape.
func NewWriter(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct{ w io.Writer }

func (e *writer) Write(p []byte) (int, error) {
	s := string(p)
	if !safe(s, true) {
		s = escape(s, true)
	}
	if _, err := io.WriteString(e.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

func bad(r rune, layout bool) bool {
	switch {
	case layout && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

func safe(s string, layout bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || bad(r, layout) {
			return false
		}
	}
	return true
}

func escape(s string, layout bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x100 && bad(r, layout):
			fmt.Fprintf(&b, `\x%02x`, r)
		case bad(r, layout):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
