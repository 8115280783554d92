package media

import (
	"bytes"
	"testing"
)

// FuzzParseManifest: any bytes give a manifest or an error, never a panic;
// a manifest that parses encodes back to bytes that parse to the same.
func FuzzParseManifest(f *testing.F) {
	good := &Manifest{Format: Format, Selection: Selection{Security: true},
		Vendors:  []Vendor{{Name: "debian", RootFingerprint: "sha256:" + string(bytes.Repeat([]byte("a"), 64)), RootVersion: 1, TimestampVersion: 3, Updates: []Update{{ID: "BW-1", Bytes: 10}}}},
		Site:     &Site{RootFingerprint: "sha256:" + string(bytes.Repeat([]byte("b"), 64)), TimestampVersion: 2, Groups: []string{"web"}},
		Lockdown: []string{"ssh.yaml"},
		Files:    []FileEntry{{Path: "README.txt", Length: 5, SHA256: string(bytes.Repeat([]byte("c"), 64))}}}
	b, err := good.JSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":"bulwark-media 1","selection":{},"vendors":[],"lockdown":[],"files":[{"path":"../etc/passwd","length":1,"sha256":"` + string(bytes.Repeat([]byte("0"), 64)) + `"}]}`))
	f.Add([]byte(`{"format":"bulwark-media 2"}`))
	f.Add([]byte(`{"format":"bulwark-media 1","files":[{"path":"b"},{"path":"a"}]}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		out, err := m.JSON()
		if err != nil {
			t.Fatalf("a parsed manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("encoded manifest does not parse: %v\n%s", err, out)
		}
		out2, _ := m2.JSON()
		if !bytes.Equal(out, out2) {
			t.Fatal("encoding is not stable")
		}
	})
}

func TestParseManifestRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown field", `{"format":"bulwark-media 1","extra":1}`, "unknown field"},
		{"other format", `{"format":"bulwark-media 9"}`, "this bulwark reads"},
		{"escaping path", `{"format":"bulwark-media 1","files":[{"path":"../x","length":1,"sha256":"` + string(bytes.Repeat([]byte("0"), 64)) + `"}]}`, "no element may be"},
		{"hidden path", `{"format":"bulwark-media 1","files":[{"path":"a/.x","length":1,"sha256":"` + string(bytes.Repeat([]byte("0"), 64)) + `"}]}`, "start with '.'"},
		{"bad hash", `{"format":"bulwark-media 1","files":[{"path":"a","length":1,"sha256":"xyz"}]}`, "64 lowercase hex"},
		{"trailing data", `{"format":"bulwark-media 1"} {}`, "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.in))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
