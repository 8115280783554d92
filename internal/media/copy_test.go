package media

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A payload of several copy buffers (and a part of one) is copied and
// hashed whole; one whose bytes or length differ from the signed ones is
// refused, and so is one longer than signed (read one byte past it).
func TestWriteJobCopiesAcrossBuffers(t *testing.T) {
	dir := t.TempDir()
	payload := make([]byte, 3*copyBufferSize+17)
	rand.Read(payload)
	src := filepath.Join(dir, "payload")
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	signed := hex.EncodeToString(sum[:])
	var seen int64
	fe, err := writeJob(filepath.Join(dir, "out", "copy"), copyJob{src: src, dst: "x/copy", length: int64(len(payload)), sha256: signed},
		func(_ string, done, _ int64) { seen = done })
	if err != nil {
		t.Fatal(err)
	}
	if fe.Length != int64(len(payload)) || fe.SHA256 != signed || seen != int64(len(payload)) {
		t.Fatalf("entry %+v, progress %d: want %d bytes sha256 %s", fe, seen, len(payload), signed)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out", "copy")); !bytes.Equal(got, payload) {
		t.Fatal("the copy differs from the payload")
	}

	for _, tc := range []struct {
		name   string
		bytes  []byte
		length int64
	}{
		{"a byte in the last buffer changed", func() []byte { b := bytes.Clone(payload); b[len(b)-3] ^= 1; return b }(), int64(len(payload))},
		{"a byte in the first buffer changed", func() []byte { b := bytes.Clone(payload); b[5] ^= 1; return b }(), int64(len(payload))},
		{"longer than signed", append(bytes.Clone(payload), 0), int64(len(payload))},
		{"shorter than signed", payload[:len(payload)-1], int64(len(payload))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "payload")
			if err := os.WriteFile(p, tc.bytes, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := writeJob(filepath.Join(t.TempDir(), "copy"), copyJob{src: p, dst: "x/copy", length: tc.length, sha256: signed}, nil)
			if err == nil || !strings.Contains(err.Error(), "the source repository is damaged") {
				t.Fatalf("got %v, want the source refused as damaged", err)
			}
		})
	}
}
