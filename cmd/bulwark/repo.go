package main

import "github.com/spf13/cobra"

func newRepoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repo",
		Short: "Create and sign vendor update repositories (being built: see issue 2)",
	}
}
