package tuf

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	fpA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	fpB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// One parser for root fingerprints: what RootFingerprint writes,
// ParseRootFingerprint reads back unchanged, and the pin lists of flags and
// configuration files go through it.
func TestRootFingerprintRoundTrip(t *testing.T) {
	fp := RootFingerprint([]byte(`{"signed":{}}`))
	got, err := ParseRootFingerprint(fp)
	if err != nil || got != fp {
		t.Fatalf("ParseRootFingerprint(%q) = %q, %v", fp, got, err)
	}
	if got, _ := ParseRootFingerprint(" " + strings.ToUpper(fp[:7]) + strings.ToUpper(fp[7:]) + "\n"); got != fp {
		t.Fatalf("upper case with spaces read as %q, want %q", got, fp)
	}
}

func TestParseVendorPins(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{"none", nil, map[string]string{}, ""},
		{"two", []string{"debian=" + strings.ToUpper(fpA), "acme=" + fpB}, map[string]string{"debian": fpA, "acme": fpB}, ""},
		{"no equals", []string{"debian"}, nil, `--vendor "debian": want NAME=sha256:<64 hex digits>`},
		{"bad name", []string{"Deb ian=" + fpA}, nil, `--vendor "Deb ian=sha256:aaaa`},
		{"short", []string{"debian=sha256:00"}, nil, `--vendor debian: root fingerprint "sha256:00": want sha256:<64 hex digits>`},
		{"no prefix", []string{"debian=" + fpA[7:]}, nil, `--vendor debian: root fingerprint "aaaa`},
		{"twice", []string{"debian=" + fpA, "debian=" + fpA}, nil, "--vendor debian: given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVendorPins("vendor", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("pins = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("pins = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCheckVendorPins(t *testing.T) {
	got, err := CheckVendorPins("vendor_pins", map[string]string{"debian": strings.ToUpper(fpA)})
	if err != nil || got["debian"] != fpA {
		t.Fatalf("CheckVendorPins = %v, %v; want debian=%s", got, err, fpA)
	}
	if _, err := CheckVendorPins("vendor_pins", map[string]string{"debian": "md5:00"}); err == nil || !strings.Contains(err.Error(), `vendor_pins: vendor debian: root fingerprint "md5:00"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := CheckVendorPins("vendor_pins", map[string]string{"../x": fpA}); err == nil || !strings.HasPrefix(err.Error(), "vendor_pins: ") {
		t.Fatalf("err = %v", err)
	}
}

// Pins from several places agree or are refused, naming both places.
func TestPinSet(t *testing.T) {
	var s PinSet
	if err := s.Add("the configuration", map[string]string{"debian": fpA}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("--vendor", map[string]string{"debian": fpA, "acme": fpB}); err != nil {
		t.Fatal(err)
	}
	if s.Pins["acme"] != fpB || s.From["debian"] != "the configuration" {
		t.Fatalf("set = %+v", s)
	}
	err := s.Add("the enrollment", map[string]string{"debian": fpB})
	if err == nil || !strings.Contains(err.Error(), "vendor debian: the enrollment pins root "+fpB+", but the configuration pins "+fpA) {
		t.Fatalf("err = %v, want the contradiction named", err)
	}
	if s.Pins["debian"] != fpA {
		t.Fatalf("a refused pin replaced the first: %s", s.Pins["debian"])
	}
}

func FuzzParseVendorPins(f *testing.F) {
	for _, s := range []string{"debian=" + fpA, "debian", "=", "a=sha256:", "debian=SHA256:" + strings.Repeat("F", 64), "x=y=z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pins, err := ParseVendorPins("vendor", []string{s})
		if err != nil {
			return
		}
		for name, fp := range pins {
			again, err := ParseRootFingerprint(fp)
			if err != nil || again != fp {
				t.Fatalf("pin %s=%s is not in canonical form (%q, %v)", name, fp, again, err)
			}
		}
	})
}

// A pins file round-trips, an empty set removes it, and a damaged one is
// refused naming the file.
func TestPinsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pins.json")
	if pins, err := ReadPinsFile(p); err != nil || pins != nil {
		t.Fatalf("missing file: %v %v", pins, err)
	}
	want := map[string]string{"debian": fpA, "example": fpB}
	if err := WritePinsFile(p, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPinsFile(p); err != nil || !maps.Equal(got, want) {
		t.Fatalf("read back: %v %v", got, err)
	}
	if err := WritePinsFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no pins left the file: %v", err)
	}
	for body, msg := range map[string]string{
		`[1]`:                     "want a JSON object of vendor name to root fingerprint",
		`{"debian": "sha1:0"}`:    "vendor debian: root fingerprint",
		`{"../x": "` + fpA + `"}`: p,
	} {
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := ReadPinsFile(p); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", body, err)
		}
	}
}
