package server

import (
	"context"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
)

// openStore opens the database cfg names: SQLite in the data directory, or
// PostgreSQL at cfg.Database (validated already).
func openStore(ctx context.Context, cfg Config) (Store, error) {
	if cfg.Database != "" {
		return postgres.Open(ctx, cfg.Database)
	}
	return sqlite.Open(ctx, filepath.Join(cfg.DataDir, dbFile))
}
