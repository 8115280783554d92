package main

import (
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
