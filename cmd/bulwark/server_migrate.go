//go:build !agentonly

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/transfer"
)

// migrateSettings are the server's, with the database as --to.
var migrateSettings = serverSettings.WithFlag("database", "to", "target PostgreSQL URL postgres://user@host:port/name (BULWARK_DATABASE, or database: in --config)")

func newServerMigrateCmd() *cobra.Command {
	var configPath string
	var batch int
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://…",
		Short: "Move the server's SQLite database to PostgreSQL, verified row by row",
		Long: `Copy every table of the server's SQLite database (DATA_DIR/bulwark.db) into
a PostgreSQL database, then compare both row by row. Stop the server first:
the copy holds SQLite's write lock while it runs, so a running server's writes
wait and then fail instead of being lost.

The target must be empty or hold an earlier, interrupted run of this same
migration: the copy commits in batches and skips rows already there, so if it
is killed, run the same command again and it completes. Verification refuses
any difference (a missing, extra or changed row) and names the table and row.

The data directory and the database come from --data-dir and --to, else
BULWARK_DATA_DIR and BULWARK_DATABASE, else the server's --config file.

Afterwards start the server with the same data directory (it keeps the TLS
material and the site repository) and --database set to the URL. The SQLite
file is left as it was.`,
		Example: `  systemctl stop bulwark-server
  BULWARK_DATABASE=postgres://bulwark@db:5432/bulwark bulwark server migrate --data-dir /var/lib/bulwark
  bulwark server --data-dir /var/lib/bulwark --database postgres://bulwark@db:5432/bulwark`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fc, err := loadServerConfigFrom(migrateSettings, configPath, os.Environ, cmd.Flags())
			if err != nil {
				return err
			}
			dataDir, to := fc.DataDir, fc.Database
			if !postgres.IsURL(to) {
				return fmt.Errorf("--to %q: give the PostgreSQL database as postgres://user@host:port/name (or set BULWARK_DATABASE)", postgres.Redact(to))
			}
			path := filepath.Join(dataDir, "bulwark.db")
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("source database: %w (is --data-dir the server's data directory?)", err)
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			// Bring the source to this version's schema first, so both sides
			// have the same tables and columns.
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				return err
			}
			s.Close()
			src, err := sqlite.OpenSQL(ctx, path)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := postgres.Open(ctx, to)
			if err != nil {
				return err
			}
			defer dst.Close()
			var text io.Writer = w
			if out.Data() {
				text = io.Discard
			}
			fmt.Fprintf(text, "Copying %s to %s\n", path, postgres.Redact(to))
			tables, err := transfer.Copy(ctx, src, dst.SQL(), transfer.Options{Batch: batch})
			for _, t := range tables {
				fmt.Fprintf(text, "  %-24s %9d rows (%d new)\n", t.Name, t.Rows, t.Inserted)
			}
			if err != nil {
				return err
			}
			if out.Data() {
				rows := make([]map[string]any, 0, len(tables))
				for _, t := range tables {
					rows = append(rows, map[string]any{"name": t.Name, "rows": t.Rows, "inserted": t.Inserted})
				}
				return out.print(w, map[string]any{"source": path, "target": postgres.Redact(to), "verified": true, "tables": rows})
			}
			fmt.Fprintf(text, "Verified row by row: the PostgreSQL database holds exactly what %s holds.\n", path)
			fmt.Fprintf(text, "Start the server with --data-dir %s --database %s\n", dataDir, postgres.Redact(to))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the server's YAML config file (its data_dir and database, and its drop-ins)")
	migrateSettings.Register(f, "data_dir", "database")
	f.IntVar(&batch, "batch", 2000, "rows per target transaction")
	out = addOutputFlag(cmd)
	return cmd
}
