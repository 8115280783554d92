package fetch

import (
	"fmt"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 100-199/200", 100, 199, 200, true},
		{"bytes 100-199/*", 100, 199, -1, true},
		{"bytes 999999999999999999-999999999999999999/*", 999999999999999999, 999999999999999999, -1, true},
		{"", 0, 0, 0, false},
		{"bytes */200", 0, 0, 0, false},                   // the 416 form, not a range
		{"items 0-1/2", 0, 0, 0, false},                   // other unit
		{"bytes 0-1", 0, 0, 0, false},                     // no complete length
		{"bytes 5-4/10", 0, 0, 0, false},                  // first after last
		{"bytes 0-10/10", 0, 0, 0, false},                 // last beyond complete
		{"bytes -1-5/10", 0, 0, 0, false},                 // sign
		{"bytes +1-5/10", 0, 0, 0, false},                 // sign
		{"bytes  1-5/10", 0, 0, 0, false},                 // extra space
		{"bytes 1 -5/10", 0, 0, 0, false},                 // space inside
		{"bytes 0-1/9999999999999999999", 0, 0, 0, false}, // overflow
		{"bytes 0x1-5/10", 0, 0, 0, false},                // hex
		{"bytes 1-5/10/20", 0, 0, 0, false},               // trailing junk
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			first, last, total, err := parseContentRange(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (first != tt.first || last != tt.last || total != tt.total) {
				t.Fatalf("got %d-%d/%d, want %d-%d/%d", first, last, total, tt.first, tt.last, tt.total)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 100-199/*", "bytes */200", "bytes 5-4/10", "bytes 0-1/9999999999999999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, err := parseContentRange(s)
		if err != nil {
			return
		}
		if first < 0 || last < first || (total != -1 && last >= total) || total < -1 {
			t.Fatalf("%q parsed to inconsistent %d-%d/%d", s, first, last, total)
		}
		// What parses must say the same when written canonically.
		canon := fmt.Sprintf("bytes %d-%d/%d", first, last, total)
		if total == -1 {
			canon = fmt.Sprintf("bytes %d-%d/*", first, last)
		}
		f2, l2, t2, err := parseContentRange(canon)
		if err != nil || f2 != first || l2 != last || t2 != total {
			t.Fatalf("%q → %q does not round-trip: %d-%d/%d, %v", s, canon, f2, l2, t2, err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"url":"http://x/p","length":5,"sha256":"ab","validator":"\"v1\""}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := decodeMeta(b)
		if ok && m.Version != metaVersion {
			t.Fatalf("accepted version %d", m.Version)
		}
		if !ok && m != (partialMeta{}) {
			t.Fatalf("refused meta returned %+v", m)
		}
	})
}
