package main

import "github.com/spf13/cobra"

func newLockdownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lockdown",
		Short: "Audit, apply and undo hardening profiles (being built: see issue 5)",
	}
}
