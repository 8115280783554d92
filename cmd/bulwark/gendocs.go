//go:build !agentonly

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/bulwarkhq/bulwark/internal/version"
)

// newGenDocsCmd writes the man pages and shell completions that the Debian
// packages ship (scripts/package runs it). It is hidden: admins read the
// results, not the command.
func newGenDocsCmd() *cobra.Command {
	var manDir, completionDir string
	cmd := &cobra.Command{
		Use:    "gendocs --man DIR --completions DIR",
		Short:  "Write man pages and shell completions for packaging",
		Hidden: true,
		Example: `  bulwark gendocs --man build/man --completions build/completions
  man -l build/man/bulwark-agent-run.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			if manDir != "" {
				if err := os.MkdirAll(manDir, 0o755); err != nil {
					return err
				}
				header := &doc.GenManHeader{Title: "BULWARK", Section: "1", Source: "Bulwark " + version.String(), Manual: "Bulwark Manual"}
				// A fixed date keeps the pages reproducible.
				root.DisableAutoGenTag = true
				if err := doc.GenManTree(root, header, manDir); err != nil {
					return fmt.Errorf("man pages: %w", err)
				}
			}
			if completionDir != "" {
				if err := os.MkdirAll(completionDir, 0o755); err != nil {
					return err
				}
				for _, c := range []struct {
					file string
					gen  func(string) error
				}{
					{"bulwark.bash", func(p string) error { return root.GenBashCompletionFileV2(p, true) }},
					{"_bulwark", root.GenZshCompletionFile},
					{"bulwark.fish", func(p string) error { return root.GenFishCompletionFile(p, true) }},
				} {
					if err := c.gen(filepath.Join(completionDir, c.file)); err != nil {
						return fmt.Errorf("completion %s: %w", c.file, err)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "write section 1 man pages into `DIR`")
	cmd.Flags().StringVar(&completionDir, "completions", "", "write bash, zsh and fish completions into `DIR`")
	return cmd
}
