// Command bulwark is Bulwark's single binary: vendor repository tool, update
// server, agent, lockdown tool and offline media. main only parses arguments,
// wires the parts together and exits; everything else lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The handler stays until the process exits: a Ctrl-C that arrives after
	// the command finished its work (a publish committed) must not kill the
	// process by the signal's default action and report it interrupted.
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM stopped a long command at a safe point.
		fmt.Fprintln(os.Stderr, "bulwark: interrupted")
		os.Exit(130)
	}
	if err != nil {
		os.Exit(report(os.Stderr, err))
	}
}

// exitCode is returned by commands that have already told the user what went
// wrong and only need the process to exit with a given status (for example
// `repo verify` finding problems, or `lockdown audit` finding failures).
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// run executes one bulwark invocation. It is what main and the testscript
// harness call, so it must not touch os.Args, os.Exit or the real stdio.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
