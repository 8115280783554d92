package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// logHandler makes the slog handler for format (text or json) writing to
// w. When w is the journal (systemd sets JOURNAL_STREAM to the device and
// inode of the stream it gave us), each line starts with its syslog
// priority (<3> error … <7> debug) and carries no timestamp of its own:
// journald records both.
func logHandler(w io.Writer, format string, opts *slog.HandlerOptions) (slog.Handler, error) {
	journal := toJournal(w, os.Getenv("JOURNAL_STREAM"))
	o := *opts
	var jw *journalWriter
	if journal {
		jw = &journalWriter{w: w}
		w = jw
		replace := o.ReplaceAttr
		o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			if replace != nil {
				return replace(groups, a)
			}
			return a
		}
	}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, &o)
	case "json":
		h = slog.NewJSONHandler(w, &o)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
	if journal {
		return journalHandler{Handler: h, jw: jw}, nil
	}
	return h, nil
}

// toJournal reports whether w is the stream JOURNAL_STREAM ("dev:inode")
// names.
func toJournal(w io.Writer, stream string) bool {
	f, ok := w.(*os.File)
	if !ok || stream == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(stream, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// journalWriter prefixes each record (one Write) with the priority of the
// record being handled.
type journalWriter struct {
	mu   sync.Mutex
	w    io.Writer
	prio string
}

func (j *journalWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(j.w, j.prio); err != nil {
		return 0, err
	}
	return j.w.Write(p)
}

type journalHandler struct {
	slog.Handler
	jw *journalWriter
}

// priority maps slog levels to syslog priorities.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.jw.mu.Lock()
	defer h.jw.mu.Unlock()
	h.jw.prio = priority(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{Handler: h.Handler.WithAttrs(as), jw: h.jw}
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{Handler: h.Handler.WithGroup(name), jw: h.jw}
}
