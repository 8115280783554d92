package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under systemd (JOURNAL_STREAM names our stderr) every line starts with its
// syslog priority and has no timestamp of its own; elsewhere lines are
// plain slog with time.
func TestJournalLogs(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			f.Truncate(0)
			f.Seek(0, 0)
			t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
			log, _, err := newLogger(f, "debug", format)
			if err != nil {
				t.Fatal(err)
			}
			log.Error("e")
			log.Warn("w")
			log.With("k", "v").Info("i")
			log.WithGroup("g").Debug("d", "x", 1)
			b, _ := os.ReadFile(f.Name())
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			want := []string{"<3>", "<4>", "<6>", "<7>"}
			if len(lines) != len(want) {
				t.Fatalf("%d lines:\n%s", len(lines), b)
			}
			for i, l := range lines {
				if !strings.HasPrefix(l, want[i]) || strings.Contains(l, "time") {
					t.Errorf("line %d %q: want prefix %s and no time", i, l, want[i])
				}
			}
		})
	}
	// Another stream (or a terminal): plain lines with their time.
	t.Setenv("JOURNAL_STREAM", "1:1")
	log, _, err := newLogger(f, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(0)
	f.Seek(0, 0)
	log.Info("plain")
	b, _ := os.ReadFile(f.Name())
	if !strings.HasPrefix(string(b), "time=") {
		t.Errorf("not the journal: %q", b)
	}
	var buf bytes.Buffer
	if _, _, err := newLogger(&buf, "info", "xml"); err == nil {
		t.Error("log format xml accepted")
	}
}
