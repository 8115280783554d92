package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// Flag help reads right: a backquoted word in a flag's usage becomes its
// value name in --help, so only value names (DIR, FILE) may be backquoted.
func TestFlagHelpValueNames(t *testing.T) {
	walk(newRootCmd(nil, io.Discard, io.Discard), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if strings.Contains(f.Usage, "`") && (name != strings.ToUpper(name) || strings.Contains(name, " ")) {
				t.Errorf("%s --%s: help shows %q as the value name; quote commands without backquotes", c.CommandPath(), f.Name, name)
			}
		})
	})
}

// Every duration flag accepts days and weeks (--deadline-in 3d).
func TestDurationFlagsAcceptDays(t *testing.T) {
	n := 0
	walk(newRootCmd(nil, io.Discard, io.Discard), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() != "duration" {
				return
			}
			n++
			if err := f.Value.Set("1w2d"); err != nil {
				t.Errorf("%s --%s 1w2d: %v", c.CommandPath(), f.Name, err)
				return
			}
			if d, _ := time.ParseDuration(f.Value.String()); d != 9*24*time.Hour {
				t.Errorf("%s --%s 1w2d = %s, want 216h", c.CommandPath(), f.Name, f.Value.String())
			}
			if err := f.Value.Set("3 days"); err == nil {
				t.Errorf("%s --%s accepted %q", c.CommandPath(), f.Name, "3 days")
			}
		})
	})
	if n == 0 {
		t.Fatal("no duration flags found")
	}
}

// Every command a person runs shows an example in its --help (and man page),
// and at least one line of it runs that very command (examples do not drift
// when commands move).
func TestEveryLeafHasExample(t *testing.T) {
	root := newRootCmd(nil, io.Discard, io.Discard)
	for _, c := range leaves(root) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Example in its help", c.CommandPath())
			continue
		}
		runs := false
		for _, line := range strings.Split(strings.TrimRight(c.Example, "\n"), "\n") {
			if !strings.HasPrefix(line, "  ") {
				t.Errorf("%s: example line %q: indent two spaces as cobra prints it", c.CommandPath(), line)
			}
			line, _, _ = strings.Cut(line, "#")
			for rest := line; ; {
				var ok bool
				if _, rest, ok = strings.Cut(rest, "bulwark "); !ok {
					break
				}
				if found, _, err := root.Find(strings.Fields(rest)); err == nil && found == c {
					runs = true
				}
			}
		}
		if !runs {
			t.Errorf("%s: no example line runs this command", c.CommandPath())
		}
	}
}

// One name per concept: the names flags.go lists mean the same thing on
// every command, and an old name is only a hidden alias that still works.
func TestOneNamePerConcept(t *testing.T) {
	root := newRootCmd(nil, io.Discard, io.Discard)
	renamed := map[string]string{"state": "state-dir"}
	aliases := 0
	walk(root, func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if to, ok := f.Annotations[flagAliasOf]; ok {
				aliases++
				if !f.Hidden || c.Flags().Lookup(to[0]).Value != f.Value {
					t.Errorf("%s --%s: an alias must be hidden and set --%s", c.CommandPath(), f.Name, to[0])
				}
				return
			}
			if n, ok := renamed[f.Name]; ok {
				t.Errorf("%s --%s: the name is --%s", c.CommandPath(), f.Name, n)
			}
			u := strings.ToLower(f.Usage)
			switch f.Name {
			case "root":
				if strings.Contains(u, ".json") || !strings.Contains(u, "root") {
					t.Errorf("%s --root %q: --root is a directory a system is rooted at; a root.json is --trusted-root", c.CommandPath(), f.Usage)
				}
			case "data-dir":
				if !strings.Contains(u, "server") {
					t.Errorf("%s --data-dir %q: --data-dir is a server's data directory", c.CommandPath(), f.Usage)
				}
			case "state-dir":
				if !strings.Contains(u, "state directory") && !strings.Contains(u, "journal") {
					t.Errorf("%s --state-dir %q: --state-dir is an agent's state directory or lockdown's journal", c.CommandPath(), f.Usage)
				}
			}
		})
	})
	if aliases == 0 {
		t.Fatal("no deprecated aliases found")
	}
}
