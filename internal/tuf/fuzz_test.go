package tuf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerifyMetadata replaces one metadata file of a real repository with
// arbitrary bytes and verifies the repository: loading untrusted metadata
// must never panic, and the genuine bytes must always verify.
func FuzzVerifyMetadata(f *testing.F) {
	tr := newTestRepo(f, InitOptions{BinBits: 1})
	tr.publish("BW-1", map[string]string{"a.deb": "payload"})
	snap, snapName := tr.snapshot()
	bin := tr.binOf("BW-1")
	files := []string{
		"metadata/timestamp.json",
		"metadata/" + snapName,
		fmt.Sprintf("metadata/%d.targets.json", snap.Signed.Meta["targets.json"].Version),
		fmt.Sprintf("metadata/%d.%s.json", snap.Signed.Meta[bin+".json"].Version, bin),
		"metadata/1.root.json",
		payloadFile(f, tr, "update.json"),
	}
	originals := make([][]byte, len(files))
	for i, name := range files {
		originals[i] = tr.read(name)
		f.Add(uint8(i), originals[i])
	}
	f.Add(uint8(0), []byte(`{"signed":{"_type":"timestamp","version":99999999999999999999}}`))
	f.Add(uint8(1), []byte(`{"signatures":[],"signed":{"_type":"snapshot","meta":{"targets.json":{"version":-1}}}}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		i := int(which) % len(files)
		p := filepath.Join(tr.dir, files[i])
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(p, originals[i], 0o644)
		rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now())
		if err != nil {
			t.Fatalf("verify returned an error instead of a report: %v", err)
		}
		if bytes.Equal(data, originals[i]) && !rep.OK() {
			t.Fatalf("genuine %s does not verify: %+v", files[i], rep)
		}
	})
}
