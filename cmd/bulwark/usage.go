package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// usageError is a command line that does not parse: an unknown command or
// flag, a missing or extra argument. main prints it to stderr with a pointer
// to --help and exits 2, apart from runtime failures (1).
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// hint is the line main prints after a usage error.
func (e *usageError) hint() string {
	return fmt.Sprintf("Run '%s --help' for usage.", e.cmd.CommandPath())
}

// enforceUsage makes every command in the tree report usage errors as
// usageError: flag errors, argument counts, and an unknown subcommand of a
// command that only groups others (cobra would print its help and succeed).
func enforceUsage(c *cobra.Command) {
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{cmd: cmd, err: err} })
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return &usageError{cmd: cmd, err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
	} else if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		enforceUsage(sub)
	}
}

// report tells the user what went wrong (nothing more for an exitCode,
// whose command already did) and returns the process status.
func report(stderr io.Writer, err error) int {
	if _, ok := err.(exitCode); !ok {
		fmt.Fprintln(stderr, "bulwark:", err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, ue.hint())
	}
	return exitStatus(err)
}

// exitStatus is the process status for err: 2 for usage errors, the code
// of an exitCode, 1 for everything else.
func exitStatus(err error) int {
	var ue *usageError
	var code exitCode
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &code):
		return int(code)
	}
	return 1
}
