// Package progress draws one line of progress on a terminal: what is being
// done, "n of N", a bar, the amount done, the rate and the time left. The
// line is redrawn in place and always fits the terminal's width as it is at
// each redraw (a resized window is followed), so it never wraps. On anything
// that is not a terminal (a pipe, a file, the journal) it draws nothing: a
// progress line is for a person watching, never for a log or a script.
//
// It must not decide anything about the work it shows.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Units say how amounts are shown.
type Units int

const (
	Bytes Units = iota // 1.5 MiB, 2.0 MiB/s
	Items              // 3, 1.5/s
)

// Bar is one progress line. Its methods may be called from any goroutine.
type Bar struct {
	w     io.Writer
	width func() int // 0: not a terminal, draw nothing
	units Units
	now   func() time.Time
	every time.Duration

	mu        sync.Mutex
	label     string
	n, count  int // "n of count" (count 0: not shown)
	done, tot int64
	start     time.Time
	last      time.Time
	drawn     bool
}

// New is a Bar on w. It draws only when w is a terminal (an *os.File for
// which isatty holds), at the terminal's width at each redraw.
func New(w io.Writer, units Units) *Bar {
	width := func() int { return 0 }
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		width = func() int {
			c, _, err := term.GetSize(fd)
			if err != nil || c <= 0 {
				return 80
			}
			return c
		}
	}
	return NewWidth(w, units, width)
}

// NewWidth is a Bar drawn at the width width returns (0: draw nothing), for
// callers and tests that know the width another way.
func NewWidth(w io.Writer, units Units, width func() int) *Bar {
	return &Bar{w: w, width: width, units: units, now: time.Now, every: 100 * time.Millisecond}
}

// Drawing reports whether the bar draws at all (its writer is a terminal).
func (b *Bar) Drawing() bool { return b.width() > 0 }

// Start begins item n of count (count 0 when not known) named label, of
// total units (0 when not known). The previous item's line is ended.
func (b *Bar) Start(label string, n, count int, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLine()
	b.label, b.n, b.count, b.done, b.tot = label, n, count, 0, total
	b.start = b.now()
	b.draw(true)
}

// Set says how much of the current item is done (and its total, when it
// became known), redrawing at most ten times a second and at the end.
func (b *Bar) Set(done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if total > 0 {
		b.tot = total
	}
	b.draw(done == b.tot)
}

// Item moves to item n (of the count given to Start), named label, with
// done units done, on the same line.
func (b *Bar) Item(label string, n int, done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label, b.n, b.done = label, n, done
	b.draw(false)
}

// Show sets everything the line shows at once, on the same line: for work
// whose count and total grow while it runs (a sync learns how many updates
// and bytes it has to fetch as it goes). The rate and the time left are
// measured from Start.
func (b *Bar) Show(label string, n, count int, done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label, b.n, b.count, b.done, b.tot = label, n, count, done, total
	b.draw(false)
}

// Done ends the line, leaving it on the terminal.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		b.draw(true)
	}
	b.endLine()
}

// Clear removes the line (before other output goes to the same terminal).
func (b *Bar) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}

func (b *Bar) endLine() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func (b *Bar) draw(force bool) {
	width := b.width()
	if width <= 0 {
		return
	}
	now := b.now()
	if !force && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	// \r, the line, then erase what a longer earlier line left.
	fmt.Fprint(b.w, "\r"+Line(width, b.label, b.n, b.count, b.done, b.tot, now.Sub(b.start), b.units)+"\x1b[K")
	b.drawn = true
}

// Line lays out one progress line in at most width-1 columns (the last
// column is left free: some terminals wrap when it is written). Parts are
// dropped as the width shrinks, least useful first: the bar narrows and
// goes, then the rate, the time left, the amounts; the label is shortened
// last.
func Line(width int, label string, n, count int, done, total int64, elapsed time.Duration, u Units) string {
	max := width - 1
	if max < 1 {
		return ""
	}
	var of, pct, amount, rate, eta string
	if count > 0 {
		of = fmt.Sprintf("%d of %d", n, count)
	}
	if total > 0 {
		pct = fmt.Sprintf("%3d%%", int(float64(done)*100/float64(total)))
		amount = amountOf(done, u) + "/" + amountOf(total, u)
	} else if done > 0 {
		amount = amountOf(done, u)
	}
	if s := elapsed.Seconds(); s >= 0.5 && done > 0 {
		r := float64(done) / s
		rate = amountOf(int64(r), u) + "/s"
		if u == Items {
			rate = fmt.Sprintf("%.1f/s", r)
		}
		if total > done && r > 0 {
			eta = "ETA " + clock(time.Duration(float64(total-done)/r*float64(time.Second)))
		}
	}
	// Try the richest layout first, then drop parts.
	layouts := [][]string{
		{of, "BAR", pct, amount, rate, eta},
		{of, "BAR", pct, amount, eta},
		{of, pct, amount, eta},
		{of, pct, eta},
		{of, pct},
		{pct},
	}
	for _, parts := range layouts {
		fixed := 0
		var kept []string
		for _, p := range parts {
			if p != "" {
				kept = append(kept, p)
				if p != "BAR" {
					fixed += utf8.RuneCountInString(p) + 1
				}
			}
		}
		// The label gets at least 12 columns (or all of it if shorter).
		labelMin := min(utf8.RuneCountInString(label), 12)
		room := max - fixed - labelMin
		hasBar := false
		for _, p := range kept {
			hasBar = hasBar || p == "BAR"
		}
		barWidth := 0
		if hasBar {
			if total <= 0 {
				continue
			}
			// The label keeps up to 28 columns before the bar takes any.
			labelWant := min(utf8.RuneCountInString(label), 28)
			barWidth = min(room-3-(labelWant-labelMin), 30) // "[", "]" and a space come on top
			if barWidth < 8 {
				continue
			}
			fixed += barWidth + 3
		}
		if fixed+labelMin > max && len(kept) > 0 {
			continue
		}
		lab := fit(label, max-fixed)
		out := []string{lab}
		for _, p := range kept {
			if p == "BAR" {
				fill := int(float64(barWidth) * float64(done) / float64(total))
				fill = min(max0(fill), barWidth)
				p = "[" + strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill) + "]"
			}
			out = append(out, p)
		}
		line := strings.Join(out, " ")
		if utf8.RuneCountInString(line) <= max {
			return line
		}
	}
	return fit(label, max)
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// fit shortens s to n columns, marking the cut with "…"; it pads nothing.
func fit(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func amountOf(n int64, u Units) string {
	if u == Items {
		return fmt.Sprint(n)
	}
	return HumanBytes(n)
}

// HumanBytes shows n bytes in binary units: 512 B, 1.5 KiB, 2.0 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// clock shows a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
