//go:build !agentonly

package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bulwarkhq/bulwark/internal/sdnotify"
)

// reloadOnHUP turns SIGHUP into the server's reload requests until ctx
// ends, and returns what the server calls after re-reading its TLS
// material: load the settings again and apply the log level, telling
// systemd (RELOADING=1 … READY=1) around it.
func reloadOnHUP(ctx context.Context, log *slog.Logger, level *slog.LevelVar, load func() (*serverFileConfig, error)) (<-chan struct{}, func() error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	notify := os.Getenv("NOTIFY_SOCKET")
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				sdnotify.Notify(notify, "RELOADING=1")
				select {
				case reload <- struct{}{}:
				default: // one already pending
				}
			}
		}
	}()
	return reload, func() error {
		defer sdnotify.Notify(notify, "READY=1")
		fc, err := load()
		if err != nil {
			return err
		}
		lv, err := parseLevel(fc.Log.Level)
		if err != nil {
			return err
		}
		level.Set(lv)
		log.Info("reload: settings re-read", "log_level", lv)
		return nil
	}
}
