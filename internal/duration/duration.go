// Package duration reads the durations people type on command lines and in
// configuration files: Go's forms (90m, 1h30m) plus days and weeks (3d,
// 2w, 1d12h), which admins use for deadlines and lifetimes. It only parses
// and prints; it knows no calendar (a day is 24 hours).
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// longest is the longest duration Parse accepts: 100 years.
const longest = 36500 * 24 * time.Hour

// Parse reads a duration such as "3d", "2w", "1d12h", "36h" or "90m".
func Parse(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest := in
	var total time.Duration
	for _, u := range []struct {
		suffix byte
		unit   time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		i := strings.IndexByte(rest, u.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseUint(rest[:i], 10, 20)
		if err != nil {
			return 0, fmt.Errorf("duration %q: use a number with s, m, h, d or w, e.g. 3d, 36h or 1d12h", s)
		}
		total += time.Duration(n) * u.unit
		if total > longest {
			return 0, fmt.Errorf("duration %q: at most 100 years", s)
		}
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || strings.HasPrefix(rest, "-") {
			return 0, fmt.Errorf("duration %q: use a number with s, m, h, d or w, e.g. 3d, 36h or 1d12h", s)
		}
		total += d
		if total > longest || total < 0 {
			return 0, fmt.Errorf("duration %q: at most 100 years", s)
		}
	} else if in == "" {
		return 0, fmt.Errorf("duration %q: use a number with s, m, h, d or w, e.g. 3d, 36h or 1d12h", s)
	}
	return total, nil
}

// Format prints d with days where it has whole days: 72h is "3d", 36h is
// "1d12h".
func Format(d time.Duration) string {
	if d < 24*time.Hour {
		return d.String()
	}
	days := d / (24 * time.Hour)
	rest := d - days*24*time.Hour
	if rest == 0 {
		return strconv.FormatInt(int64(days), 10) + "d"
	}
	r := rest.String() // 12h0m0s, 30m0s, 1h2m3s
	if strings.HasSuffix(r, "m0s") {
		r = r[:len(r)-2]
	}
	if strings.HasSuffix(r, "h0m") {
		r = r[:len(r)-2]
	}
	return strconv.FormatInt(int64(days), 10) + "d" + r
}

// Value is a flag value (pflag.Value) holding a duration parsed by Parse.
type Value struct{ D *time.Duration }

// NewValue makes a Value over p, set to def.
func NewValue(p *time.Duration, def time.Duration) Value {
	*p = def
	return Value{D: p}
}

func (v Value) String() string {
	if v.D == nil {
		return ""
	}
	return Format(*v.D)
}

// Set parses s.
func (v Value) Set(s string) error {
	d, err := Parse(s)
	if err != nil {
		return err
	}
	*v.D = d
	return nil
}

// Type names the value in flag help.
func (v Value) Type() string { return "duration" }
