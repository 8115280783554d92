package catalog

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// checkRoundTrip asserts what every accepted document must satisfy: JSON()
// succeeds, is deterministic, and ParseJSON reads it back to the same update.
func checkRoundTrip(t *testing.T, u *Update) {
	t.Helper()
	js, err := u.JSON()
	if err != nil {
		t.Fatalf("accepted update has no JSON: %v", err)
	}
	back, err := ParseJSON(js)
	if err != nil {
		t.Fatalf("ParseJSON(JSON()) failed: %v\n%s", err, js)
	}
	a, b := *u, *back
	a.lines, b.lines = nil, nil
	if !reflect.DeepEqual(&a, &b) {
		t.Fatalf("round trip changed the update:\n%+v\n%+v", a, b)
	}
	js2, err := back.JSON()
	if err != nil || !bytes.Equal(js, js2) {
		t.Fatalf("JSON not stable across a round trip: %v\n%s\n%s", err, js, js2)
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte(strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n",
		"  - or:\n      - os: {id: debian, version_id: 12}\n      - not: {deb: {package: telnetd, installed: false}}\n", 1)))
	f.Add([]byte("id: a\ntitle: t\nproduct: p\nclassification: tool\nseverity: low\nreleased: 2026-01-01\nreboot: never\ninstaller: {type: lockdown, profile: sysadmin}\n"))
	f.Add([]byte("id: &a x\ntitle: *a\n"))
	f.Add([]byte("<<: {id: x}\n"))
	f.Add([]byte("id: [\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseYAML("fuzz.yaml", data)
		if err != nil {
			if u != nil {
				t.Fatal("error with a non-nil update")
			}
			return
		}
		checkRoundTrip(t, u)
	})
}

func FuzzParseJSON(f *testing.F) {
	u, err := ParseYAML("seed.yaml", []byte(goodYAML))
	if err != nil {
		f.Fatal(err)
	}
	u.Revision = 2
	u.Payloads[0].Length = 10
	u.Payloads[0].SHA256 = strings.Repeat("0f", 32)
	js, err := u.JSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"id":"x","id":"y"}`))
	f.Add([]byte(`{"applies_to":[{"not":{"not":{"arch":"all"}}}]}`))
	f.Add([]byte(`[1, 2.5, null, true, "s"]`))
	f.Add([]byte(`{"revision": 1e400}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte("\"\xff\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseJSON(data)
		if err != nil {
			if u != nil {
				t.Fatal("error with a non-nil update")
			}
			return
		}
		checkRoundTrip(t, u)
	})
}
