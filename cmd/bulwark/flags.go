package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/duration"
)

// dayDuration wraps a pflag duration so that it also accepts days and weeks
// (--deadline-in 3d, --expires-in 2w): the text is read by
// internal/duration and handed on in Go's form.
type dayDuration struct{ pflag.Value }

func (d dayDuration) Set(s string) error {
	v, err := duration.Parse(s)
	if err != nil {
		return err
	}
	return d.Value.Set(v.String())
}

// acceptDays makes every duration flag in the tree accept days and weeks.
func acceptDays(c *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		if _, done := f.Value.(dayDuration); !done && f.Value.Type() == "duration" {
			f.Value = dayDuration{f.Value}
		}
	}
	c.Flags().VisitAll(wrap)
	c.PersistentFlags().VisitAll(wrap)
	for _, sub := range c.Commands() {
		acceptDays(sub)
	}
}

// Flag names mean one thing across commands:
//
//	--data-dir DIR     a server's data directory
//	--state-dir DIR    an agent's state directory, or lockdown's journal
//	--root DIR         the directory a managed system is rooted at (/ is this machine)
//	--trusted-root FILE  a TUF root.json to start verification from
//
// An old name stays accepted as a hidden alias that warns.

// flagAlias is a deprecated flag name that sets the flag now called name.
const flagAliasOf = "bulwark/alias-of"

// aliasFlag adds old to cmd as a hidden, deprecated alias of the flag name:
// it sets the same value and warns (on stderr, before the command runs)
// to use the new name.
func aliasFlag(cmd *cobra.Command, old, name string) {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		panic("aliasFlag: no flag --" + name + " on " + cmd.Name())
	}
	cmd.Flags().Var(f.Value, old, "deprecated: use --"+name)
	a := cmd.Flags().Lookup(old)
	a.Hidden = true
	a.NoOptDefVal = f.NoOptDefVal
	a.Annotations = map[string][]string{flagAliasOf: {name}}
}

// warnAliases makes every runnable command in the tree warn, before it runs,
// about each deprecated flag name it was given, and mark the new flag as
// set (commands ask Changed of the new name).
func warnAliases(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				to := f.Annotations[flagAliasOf]
				if !f.Changed || len(to) != 1 {
					return
				}
				cmd.Flags().Lookup(to[0]).Changed = true
				fmt.Fprintf(cmd.ErrOrStderr(), "bulwark: warning: --%s is deprecated and will go away; use --%s\n", f.Name, to[0])
			})
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		warnAliases(sub)
	}
}
