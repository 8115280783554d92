// Package ptytest gives tests a real terminal of a chosen width (a pty) and
// the redraws a progress line made on it. Tests only.
package ptytest

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/creack/pty"
)

// Terminal is a pty of a given width: write to TTY, read what it showed
// with Output after Close.
type Terminal struct {
	TTY  *os.File
	ptmx *os.File
	out  bytes.Buffer
	wg   sync.WaitGroup
}

// Open makes a pty cols columns wide; it is closed at the end of the test.
func Open(t testing.TB, cols uint16) *Terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	term := &Terminal{TTY: tty, ptmx: ptmx}
	term.wg.Add(1)
	go func() { defer term.wg.Done(); io.Copy(&term.out, ptmx) }()
	t.Cleanup(func() { term.Close() })
	return term
}

// Close closes the terminal and waits for everything it showed.
func (term *Terminal) Close() string {
	term.TTY.Close()
	term.wg.Wait()
	term.ptmx.Close()
	return term.out.String()
}

var redraw = regexp.MustCompile(`\r([^\r\n]*)\x1b\[K`)

// Redraws are the progress lines drawn in out, each as the terminal showed
// it (between the carriage return and the erase to the end of the line).
func Redraws(out string) []string {
	var lines []string
	for _, m := range redraw.FindAllStringSubmatch(out, -1) {
		lines = append(lines, m[1])
	}
	return lines
}
