//go:build !agentonly

package main

import (
	"os"

	"github.com/spf13/cobra"
)

func newServerConfigCmd() *cobra.Command {
	var configPath string
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "config [--config FILE] [flags]",
		Short: "Show the server's settings in effect and where each comes from",
		Long: `Layer the server's settings exactly as ` + "`bulwark server`" + ` would with the same
--config file, variables and flags (defaults, the file, its drop-ins in
lexical order, BULWARK_* variables, flags) and show each setting's value and
where it comes from: default, a file, a variable or a --flag. Secrets (the
upstream token, a database password) show as (secret). A bad value or an
unknown key is refused as the server would refuse it, naming its source; the
server is not started and nothing is written.`,
		Example: `  bulwark server config --config /etc/bulwark/server.yaml
  BULWARK_LISTEN=:9443 bulwark server config -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := layerServerConfig(serverSettings, configPath, os.Environ, cmd.Flags())
			if err != nil {
				return err
			}
			fc, err := loadServerConfig(configPath, os.Environ, cmd.Flags())
			if err != nil {
				return err
			}
			if _, err := fc.serverConfig(); err != nil {
				return err
			}
			return printSettings(cmd.OutOrStdout(), out, s.Values(serverSettings))
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML config file; the *.yaml files of its drop-in directory FILE.d are read after it, in lexical order")
	registerServerFlags(f)
	out = addOutputFlag(cmd)
	return cmd
}
