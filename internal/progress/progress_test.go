package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/progress/ptytest"
)

// Every layout fits: at any width a line never reaches the last column.
func TestLineFitsWidth(t *testing.T) {
	for width := 1; width <= 200; width++ {
		for _, tc := range []struct {
			label       string
			n, count    int
			done, total int64
			elapsed     time.Duration
			u           Units
		}{
			{"debian/BW-2026-0042-with-a-long-name", 3, 12, 5 << 20, 40 << 20, 3 * time.Second, Bytes},
			{"x", 0, 0, 0, 0, 0, Bytes},
			{"updates/BW-1.yaml", 7, 100, 6, 100, 2 * time.Second, Items},
			{"ünïcödé-label-ünïcödé", 1, 1, 1 << 30, 1 << 40, time.Hour, Bytes},
		} {
			l := Line(width, tc.label, tc.n, tc.count, tc.done, tc.total, tc.elapsed, tc.u)
			if c := utf8.RuneCountInString(l); c > width-1 && width > 1 {
				t.Errorf("width %d: %d columns: %q", width, c, l)
			}
		}
	}
}

// A wide terminal shows everything: n of N, the bar, the amounts, the rate
// and the time left; a narrow one drops the bar and the rate first.
func TestLineParts(t *testing.T) {
	l := Line(80, "debian/BW-2", 2, 5, 10<<20, 40<<20, 5*time.Second, Bytes)
	for _, want := range []string{"debian/BW-2", "2 of 5", "[====", " 25%", "]", "10.0 MiB/40.0 MiB", "2.0 MiB/s", "ETA 0:15"} {
		if !strings.Contains(l, want) {
			t.Errorf("80 columns: no %q in %q", want, l)
		}
	}
	l = Line(40, "debian/BW-2", 2, 5, 10<<20, 40<<20, 5*time.Second, Bytes)
	for _, want := range []string{"2 of 5", "25%", "ETA 0:15"} {
		if !strings.Contains(l, want) {
			t.Errorf("40 columns: no %q in %q", want, l)
		}
	}
	if strings.Contains(l, "MiB/s") {
		t.Errorf("40 columns: the rate should have been dropped before the time left: %q", l)
	}
}

// The redraws of a bar on a real terminal (a pty) at 80 and at 40 columns:
// each redraw is one line that fits the width, so nothing wraps.
func TestBarOnTerminal(t *testing.T) {
	for _, cols := range []uint16{80, 40} {
		term := ptytest.Open(t, cols)
		b := New(term.TTY, Bytes)
		if !b.Drawing() {
			t.Fatal("a pty is a terminal: the bar should draw")
		}
		clock := time.Unix(0, 0)
		b.now = func() time.Time { return clock }
		b.Start("debian/BW-2026-0042-libssl3-security-update", 1, 3, 64<<20)
		for i := int64(1); i <= 64; i++ {
			clock = clock.Add(200 * time.Millisecond)
			b.Set(i<<20, 64<<20)
		}
		b.Done()
		out := term.Close()
		redraws := ptytest.Redraws(out)
		if len(redraws) < 10 {
			t.Fatalf("%d columns: %d redraws in %q", cols, len(redraws), out)
		}
		for _, l := range redraws {
			if c := utf8.RuneCountInString(l); c >= int(cols) {
				t.Errorf("%d columns: a redraw of %d columns wraps: %q", cols, c, l)
			}
		}
		last := redraws[len(redraws)-1]
		for _, want := range []string{"1 of 3", "100%"} {
			if !strings.Contains(last, want) {
				t.Errorf("%d columns: last redraw %q lacks %q", cols, last, want)
			}
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("%d columns: want the one line ended once, got %q", cols, out)
		}
	}
}

// Not a terminal (a pipe, a file, the journal): nothing at all.
func TestBarSilentWhenNotTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := New(w, Bytes)
	b.Start("x", 1, 1, 10)
	b.Set(10, 10)
	b.Done()
	w.Close()
	got, _ := io.ReadAll(r)
	var buf bytes.Buffer
	b2 := New(&buf, Items)
	b2.Start("y", 1, 2, 2)
	b2.Item("z", 2, 1)
	b2.Done()
	if len(got) != 0 || buf.Len() != 0 || b.Drawing() {
		t.Fatalf("drew on a pipe %q or a buffer %q", got, buf.String())
	}
}
