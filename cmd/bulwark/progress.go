package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressBar draws one line of download progress on a terminal, redrawn in
// place and at most ten times a second; on anything else it prints nothing
// until Done.
type progressBar struct {
	w     io.Writer
	tty   bool
	label string
	last  time.Time
	start time.Time
}

func newProgressBar(w io.Writer, tty bool) *progressBar {
	return &progressBar{w: w, tty: tty, start: time.Now()}
}

func (p *progressBar) Update(label string, done, total int64) {
	if !p.tty {
		return
	}
	if label != p.label {
		if p.label != "" {
			fmt.Fprintln(p.w)
		}
		p.label, p.start = label, time.Now()
	} else if time.Since(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * width)
	rate := ""
	if el := time.Since(p.start).Seconds(); el > 0.2 {
		rate = " " + humanBytes(int64(float64(done)/el)) + "/s"
	}
	fmt.Fprintf(p.w, "\r%-28s [%s%s] %3.0f%% %s/%s%s   ", truncate(label, 28), strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		frac*100, humanBytes(done), humanBytes(total), rate)
}

// Done ends the bar's line.
func (p *progressBar) Done() {
	if p.tty && p.label != "" {
		fmt.Fprintln(p.w)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
