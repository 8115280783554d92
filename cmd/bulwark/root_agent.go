//go:build agentonly

package main

// The lean agent build: `go build -tags agentonly ./cmd/bulwark` makes
// bulwark-agent, whose commands are those of `bulwark agent` (run, enroll,
// status, updates, install) and nothing of the server, the repository tool,
// lockdown or media, so that none of their packages (SQLite, PostgreSQL,
// goose, the console, prometheus) is linked in or initialised. The agent
// unit runs it; dist/lean_test.go checks what it imports.

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/version"
)

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := newAgentCmd()
	root.Use = "bulwark-agent"
	root.Short = "Bulwark's agent (the lean build of `bulwark agent`)"
	root.Version = version.String()
	root.SilenceUsage, root.SilenceErrors = true, true
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	enforceUsage(root)
	acceptDays(root)
	warnAliases(root)
	return root
}

// installFromMedia: the lean build has no --from-media (offline media come
// with the media commands and their server-side imports); `bulwark agent
// install --from-media` of the full build does it.
type installFromMedia struct{ media string }

func (m *installFromMedia) addFlags(*cobra.Command) {}

func (m *installFromMedia) run(*cobra.Command) error {
	return errors.New("--from-media: use `bulwark agent install --from-media` (the bulwark package); bulwark-agent does not read offline media")
}
