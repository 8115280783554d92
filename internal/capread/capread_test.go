package capread

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o644)
	if b, err := File(p, 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	if _, err := File(p, 4); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

// TestAttackSecretReadableByOthers: a token or key file that the group or
// other users can read is refused, naming the file and the fix.
func TestAttackSecretReadableByOthers(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}, {0o660, false}} {
		p := filepath.Join(t.TempDir(), "admin.token")
		os.WriteFile(p, []byte("bwa_secret\n"), 0o600)
		os.Chmod(p, tt.mode)
		_, err := Secret(p, 100)
		if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, ErrReadableByOthers)) {
			t.Errorf("mode %04o: err %v, want ok=%v", tt.mode, err, tt.ok)
		}
	}
}
