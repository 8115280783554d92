package main

// Helpers that the full build and the lean agent build (agentonly, see
// root_agent.go) both use.

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger makes the server's logger; the level can change while it runs
// (SIGHUP).
func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar, error) {
	lv, err := parseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	v := &slog.LevelVar{}
	v.Set(lv)
	h, err := logHandler(w, format, &slog.HandlerOptions{Level: v})
	if err != nil {
		return nil, nil, err
	}
	return slog.New(h), v, nil
}

func parseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return lv, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return lv, nil
}
