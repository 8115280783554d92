//go:build !agentonly

package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/version"
)

// newRootCmd builds the whole command tree. Every subcommand lives in its own
// file and is added here explicitly: no init-time registration.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "bulwark",
		Short: "Signed security updates and hardening for Linux fleets",
		Long: `Bulwark gets machines secure and keeps them secure.

One program plays every part: a vendor repository tool that signs updates into
TUF repositories (bulwark repo), an update server, an agent on every machine,
a lockdown tool for hardening profiles, and offline media.`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newRepoCmd(),
		newLockdownCmd(),
		newAgentCmd(),
		newServerCmd(),
		newAdminCmd(),
		newMediaCmd(),
		newGenDocsCmd(),
	)
	enforceUsage(root)
	acceptDays(root)
	warnAliases(root)
	return root
}
