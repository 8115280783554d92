package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is how much the agent does by itself (the Automatic Updates options).
type Mode string

// The modes.
const (
	ModeNotify    Mode = "notify"    // tell the user; download nothing
	ModeDownload  Mode = "download"  // download, tell the user, install on request
	ModeAuto      Mode = "auto"      // download; install at or above AutoInstallSeverity; the rest as download
	ModeScheduled Mode = "scheduled" // auto, but installs only inside the maintenance window
)

// Modes lists every mode, from least to most the agent does by itself.
var Modes = []Mode{ModeNotify, ModeDownload, ModeAuto, ModeScheduled}

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNotify, ModeDownload, ModeAuto, ModeScheduled:
		return m, nil
	}
	return "", fmt.Errorf("policy mode %q: use notify, download, auto or scheduled", s)
}

// Window is a weekly maintenance window: on the given days, from Start for
// Duration, in the machine's local time.
type Window struct {
	Days     []time.Weekday
	Start    time.Duration // since midnight
	Duration time.Duration
}

// Contains reports whether t falls inside the window (which may run past
// midnight into the next day).
func (w Window) Contains(t time.Time) bool {
	for back := 0; back <= 1; back++ {
		day := t.AddDate(0, 0, -back)
		midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, t.Location())
		start := midnight.Add(w.Start)
		if !w.hasDay(day.Weekday()) {
			continue
		}
		if !t.Before(start) && t.Before(start.Add(w.Duration)) {
			return true
		}
	}
	return false
}

func (w Window) hasDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// ParseWindow reads "mon,wed 02:00-04:30" or "daily 22:00-02:00".
func ParseWindow(s string) (Window, error) {
	bad := func(why string) (Window, error) {
		return Window{}, fmt.Errorf("maintenance window %q: %s (example: \"mon,thu 02:00-04:00\" or \"daily 23:00-01:00\")", s, why)
	}
	days, span, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return bad("give days and a time span")
	}
	var w Window
	if days != "daily" {
		names := map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
		for _, d := range strings.Split(days, ",") {
			wd, ok := names[strings.ToLower(d)]
			if !ok {
				return bad(fmt.Sprintf("unknown day %q; use sun..sat or daily", d))
			}
			w.Days = append(w.Days, wd)
		}
	}
	from, to, ok := strings.Cut(strings.TrimSpace(span), "-")
	if !ok {
		return bad("give the span as HH:MM-HH:MM")
	}
	f, err1 := clock(from)
	e, err2 := clock(to)
	if err1 != nil || err2 != nil {
		return bad("times are HH:MM, 00:00 to 23:59")
	}
	w.Start = f
	w.Duration = e - f
	if w.Duration <= 0 {
		w.Duration += 24 * time.Hour
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// ParseRate reads a bandwidth such as "2mbit", "500kbit", "1MB" or "64KiB"
// (per second) and returns bytes per second.
func ParseRate(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v), "/s"))
	units := []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9 / 8}, {"mbit", 1e6 / 8}, {"kbit", 1e3 / 8}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3}, {"b", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f <= 0 {
				break
			}
			return int64(f * u.mult), nil
		}
	}
	return 0, fmt.Errorf("%q is not a rate; use a number with kbit, mbit, gbit, KB, MB, KiB or MiB (per second), e.g. 2mbit", v)
}

// ParseInterval reads a check-in interval: a duration of at least a minute.
func ParseInterval(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("%q: use a duration of at least 1m, e.g. 22h", v)
	}
	return d, nil
}
