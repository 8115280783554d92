package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"3d", 72 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1w2d", 9 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{" 1d ", 24 * time.Hour, false},
		{"", 0, true},
		{"d", 0, true},
		{"-3d", 0, true},
		{"3", 0, true},
		{"3days", 0, true},
		{"1d-2h", 0, true},
		{"2d1w", 0, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		72 * time.Hour:                "3d",
		36 * time.Hour:                "1d12h",
		365 * 24 * time.Hour:          "365d",
		90 * time.Minute:              "1h30m0s",
		24*time.Hour + 30*time.Minute: "1d30m",
		0:                             "0s",
	} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
		if d >= 24*time.Hour {
			if back, err := Parse(Format(d)); err != nil || back != d {
				t.Errorf("Parse(Format(%v)) = %v, %v", d, back, err)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"3d", "1w2d3h", "90m", "", "-1d", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d < 0 {
			t.Fatalf("Parse(%q) = %v, negative", s, d)
		}
	})
}
