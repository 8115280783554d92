//go:build !agentonly

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/server"
)

func newServerAdminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Local recovery of admin access to a server's data directory",
	}
	var configPath string
	var out *outputFormat
	reset := &cobra.Command{
		Use:   "reset --data-dir DIR",
		Short: "Make a new admin token, as whoever owns the data directory",
		Long: `Make a new admin token directly in the server's store, for when every admin
token is lost. Being able to read and write the data directory is the proof
(it holds the site's keys anyway): run it as the server's user. The server
may be running; other tokens stay as they are (revoke lost ones with
'bulwark admin tokens revoke'). The token goes to standard output alone; keep
it safe, it is stored only as a hash. The reset is written to the audit log
(admin-token.reset, by local:<your OS user>); if that fails, the new token
is revoked and the reset fails. The data directory and the database come
from the flags, BULWARK_DATA_DIR and BULWARK_DATABASE, or the server's --config
file, as for ` + "`bulwark server`" + `.`,
		Example: `  sudo -u bulwark-server bulwark server admin-token reset --data-dir /var/lib/bulwark-server
  bulwark server admin-token reset --data-dir ./bulwark-data > admin.token && chmod 600 admin.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fc, err := loadServerConfigFrom(serverSettings, configPath, os.Environ, cmd.Flags())
			if err != nil {
				return err
			}
			secret, t, err := server.ResetAdminToken(cmd.Context(), server.Config{DataDir: fc.DataDir, Database: fc.Database})
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), map[string]any{"token": secret, "info": t})
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "New admin token %s (%s) above; it is shown once and stored only as a hash.\n", t.ID, t.Name)
			return nil
		},
	}
	reset.Flags().StringVar(&configPath, "config", "", "the server's YAML config file (its data_dir and database, and its drop-ins)")
	serverSettings.Register(reset.Flags(), "data_dir", "database")
	out = addOutputFlag(reset)
	cmd.AddCommand(reset)
	return cmd
}
