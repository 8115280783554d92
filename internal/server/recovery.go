package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// ErrNotStarted means a data directory where no server finished its first
// start.
var ErrNotStarted = errors.New("no server has started in this data directory")

// ResetAdminToken makes a new admin token in the store of the data directory
// cfg names, for whoever can read and write that directory (the server's own
// user) and has lost every admin token. Being able to open the data
// directory is the proof: it holds the site's keys anyway. The server may be
// running; other tokens are left as they are. The reset is written to the
// audit log (action admin-token.reset, by local:<OS user>, via cli); when
// that cannot be written the new token is revoked and the reset fails, so
// no admin token appears unrecorded.
func ResetAdminToken(ctx context.Context, cfg Config) (secret string, t *store.Token, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "bulwark-data"
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, formatFile)); errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("data dir %s: %w: start `bulwark server` there first", cfg.DataDir, ErrNotStarted)
	} else if err != nil {
		return "", nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if _, err := prepareDataDir(cfg.DataDir); err != nil {
		return "", nil, err
	}
	st := cfg.Store
	if st == nil {
		if st, err = openStore(ctx, cfg); err != nil {
			return "", nil, err
		}
		defer st.Close()
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	s := &Server{st: st, now: now}
	secret, t, err = s.newToken(ctx, &store.Token{Kind: store.KindAPI, Role: store.RoleAdmin, Name: "reset " + now().UTC().Format(time.RFC3339)})
	if err != nil {
		return "", nil, err
	}
	e := &store.AuditEntry{At: now().UTC(), Actor: "local:" + osUser(), Via: "cli", Action: "admin-token.reset", Target: t.ID,
		Detail: "bulwark server admin-token reset --data-dir " + cfg.DataDir, Remote: "local"}
	if err := st.AddAudit(ctx, e); err != nil {
		if rerr := st.RevokeToken(context.WithoutCancel(ctx), t.ID, now()); rerr != nil {
			return "", nil, fmt.Errorf("audit log: %w; and revoking the unrecorded token %s: %v", err, t.ID, rerr)
		}
		return "", nil, fmt.Errorf("audit log: %w (the new token was revoked)", err)
	}
	return secret, t, nil
}

// osUser names who runs this process, for the audit log.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
