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
