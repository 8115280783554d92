package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// ParseVendorPins reads vendor root pins written NAME=sha256:… (the
// `--vendor` flags of enrollment, media and `agent install --from-media`)
// into a map of name → fingerprint in the form RootFingerprint writes. flag
// names the flag in errors.
func ParseVendorPins(flag string, values []string) (map[string]string, error) {
	pins := map[string]string{}
	for _, v := range values {
		name, fp, ok := strings.Cut(v, "=")
		if !ok || catalog.CheckVendorName(name) != nil {
			return nil, fmt.Errorf("--%s %q: want NAME=sha256:<64 hex digits>, a vendor name and the fingerprint of the vendor's first root", flag, v)
		}
		if _, dup := pins[name]; dup {
			return nil, fmt.Errorf("--%s %s: given twice", flag, name)
		}
		c, err := ParseRootFingerprint(fp)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flag, name, err)
		}
		pins[name] = c
	}
	return pins, nil
}

// CheckVendorPins checks a map of vendor root pins (a configuration file's
// or an enrollment's) and returns it with every fingerprint in the form
// RootFingerprint writes. what names the map in errors.
func CheckVendorPins(what string, pins map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(pins))
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		if err := catalog.CheckVendorName(name); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c, err := ParseRootFingerprint(pins[name])
		if err != nil {
			return nil, fmt.Errorf("%s: vendor %s: %w", what, name, err)
		}
		out[name] = c
	}
	return out, nil
}

// PinSet gathers vendor root pins from several places (a server's data
// directory, a configuration file, an enrollment, the command line) and
// refuses two different pins for one vendor, naming both places.
type PinSet struct {
	Pins map[string]string // name → fingerprint
	From map[string]string // name → where its pin came from
}

// Add adds pins that came from "from"; a pin that contradicts one already
// in the set is refused.
func (s *PinSet) Add(from string, pins map[string]string) error {
	if s.Pins == nil {
		s.Pins, s.From = map[string]string{}, map[string]string{}
	}
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		fp := pins[name]
		if have, ok := s.Pins[name]; ok && have != fp {
			return fmt.Errorf("vendor %s: %s pins root %s, but %s pins %s: check both with the vendor and remove the wrong one", name, from, fp, s.From[name], have)
		}
		if _, ok := s.Pins[name]; !ok {
			s.Pins[name], s.From[name] = fp, from
		}
	}
	return nil
}

// WritePinsFile writes vendor root pins (name → fingerprint) to the JSON
// file at path, atomically, mode 0600; no pins remove the file.
func WritePinsFile(path string, pins map[string]string) error {
	if len(pins) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(pins, "", "  ")
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b)+"\n" {
		return nil
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// ReadPinsFile reads a file WritePinsFile wrote, each fingerprint checked;
// a missing file holds no pins.
func ReadPinsFile(path string) (map[string]string, error) {
	b, err := capread.File(path, 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pins map[string]string
	if err := json.Unmarshal(b, &pins); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of vendor name to root fingerprint: %w", path, err)
	}
	return CheckVendorPins(path, pins)
}
