package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// leaves are the runnable commands without subcommands, hidden ones left out.
func leaves(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	walk(root, func(c *cobra.Command) {
		if !c.HasSubCommands() && c.Runnable() && !c.Hidden {
			out = append(out, c)
		}
	})
	return out
}

// outputCoveredElsewhere are data-printing commands whose -o json and -o
// yaml output a Go test parses instead of output_formats.txtar (they need a
// PostgreSQL the scripts do not start).
var outputCoveredElsewhere = map[string]string{
	"bulwark server migrate": "TestServerMigrate",
}

// TestOutputFormatsCovered walks the command tree: every leaf takes -o json
// and -o yaml, and testdata/script/output_formats.txtar runs it with both
// and checks that the output parses (`parses json`, `parses yaml` on the next
// line).
func TestOutputFormatsCovered(t *testing.T) {
	root := newRootCmd(nil, io.Discard, io.Discard)
	script, err := os.ReadFile("testdata/script/output_formats.txtar")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{} // "path format"
	lines := strings.Split(string(script), "\n")
	for i, line := range lines {
		_, rest, ok := strings.Cut(line, "bulwark ")
		if !ok || strings.HasPrefix(line, "#") || i+1 >= len(lines) {
			continue
		}
		rest, _, _ = strings.Cut(rest, "'")
		fields := strings.Fields(rest)
		c, _, err := root.Find(fields)
		if err != nil || c == root {
			continue
		}
		for _, f := range []string{"json", "yaml"} {
			if strings.Contains(rest, "-o "+f) && strings.TrimSpace(lines[i+1]) == "parses "+f {
				covered[c.CommandPath()+" "+f] = true
			}
		}
	}
	for _, c := range leaves(root) {
		fl := c.Flag("output")
		if fl == nil {
			t.Errorf("%s: no -o flag", c.CommandPath())
			continue
		}
		for _, f := range []string{"json", "yaml"} {
			if err := fl.Value.Set(f); err != nil {
				t.Errorf("%s -o %s: %v", c.CommandPath(), f, err)
			}
			if outputCoveredElsewhere[c.CommandPath()] == "" && !covered[c.CommandPath()+" "+f] {
				t.Errorf("%s -o %s: not run and parsed in testdata/script/output_formats.txtar", c.CommandPath(), f)
			}
		}
	}
}

// The data formats carry the same keys, numbers stay numbers, and a string
// that could drive the terminal is escaped in both.
func TestOutputPrint(t *testing.T) {
	v := map[string]any{"name": "x\x1b]0;pwned\x07", "count": 3, "big": int64(1) << 60, "ratio": 0.5, "list": []string{"a"}}
	for _, tc := range []struct{ format, want string }{
		{"json", `"big": 1152921504606846976`},
		{"yaml", "big: 1152921504606846976\n"},
		{"yaml", "count: 3\n"},
		{"yaml", "ratio: 0.5\n"},
		{"yaml", `name: "x\e]0;pwned\a"`},
		{"json", `"name": "x\u001b]0;pwned\u0007"`},
	} {
		var b bytes.Buffer
		if err := newOutputFormat(tc.format).print(&b, v); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("-o %s: want %q in\n%s", tc.format, tc.want, b.String())
		}
		if bytes.ContainsAny(b.Bytes(), "\x1b\x07") {
			t.Errorf("-o %s: raw control characters in\n%q", tc.format, b.String())
		}
		if err := parseDocument(tc.format, b.Bytes()); err != nil {
			t.Errorf("-o %s: %v", tc.format, err)
		}
	}
	if err := newOutputFormat().Set("xml"); err == nil || !strings.Contains(err.Error(), "text, json, yaml") {
		t.Errorf("-o xml: %v", err)
	}
}
