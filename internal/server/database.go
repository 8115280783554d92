package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
)

// openStore opens the database cfg names: SQLite in the data directory, or
// PostgreSQL at cfg.Database (validated already).
func openStore(ctx context.Context, cfg Config) (Store, error) {
	if cfg.Database != "" {
		db, err := postgres.Open(ctx, cfg.Database)
		if err != nil {
			return nil, err
		}
		db.Logf = func(format string, args ...any) { cfg.Logger.Warn(fmt.Sprintf(format, args...)) }
		return db, nil
	}
	return sqlite.Open(ctx, filepath.Join(cfg.DataDir, dbFile))
}

// lockSite serialises writes of the site repository: within this process,
// and across replicas when the store coordinates them (a PostgreSQL
// advisory lock). unlock releases both.
func (s *Server) lockSite(ctx context.Context) (unlock func(), err error) {
	s.approvalsMu.Lock()
	if s.coord == nil {
		return s.approvalsMu.Unlock, nil
	}
	release, err := s.coord.LockSite(ctx)
	if err != nil {
		s.approvalsMu.Unlock()
		return nil, err
	}
	return func() {
		release()
		s.approvalsMu.Unlock()
	}, nil
}
