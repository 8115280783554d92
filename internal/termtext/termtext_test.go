package termtext

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"erase line \x1b[2K\rfake: ok", `erase line \x1b[2K\x0dfake: ok`},
		{"title \x1b]0;pwned\x07", `title \x1b]0;pwned\x07`},
		{"two\nlines\tand tab", `two\x0alines\x09and tab`},
		{"c1 csi \u009b2J", `c1 csi \x9b2J`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad utf-8 \xff\xfe", `bad utf-8 \xff\xfe`},
		{"del \x7f", `del \x7f`},
		{`back\slash`, `back\slash`},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriterKeepsLayout(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	w.Write([]byte("a\tb\n\x1b[31mred\r\n"))
	if got, want := b.String(), "a\tb\n\\x1b[31mred\\x0d\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2K\rfake")
	f.Add("\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, layout := range []bool{false, true} {
			out := Escape(s)
			if layout {
				var b strings.Builder
				NewWriter(&b).Write([]byte(s))
				out = b.String()
			}
			for _, r := range out {
				if bad(r, layout) || r == 0xfffd && !strings.ContainsRune(s, 0xfffd) {
					t.Fatalf("escaped %q still holds %U: %q", s, r, out)
				}
			}
		}
	})
}
