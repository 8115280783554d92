package tuf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExpiries reads a fresh repository's four expiries (each at its
// configured period from now) and names the role whose file is damaged.
func TestExpiries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Init(dir, InitOptions{Name: "example", BinBits: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	exp, err := Expiries(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		if left := time.Until(exp[role]); left <= 0 {
			t.Errorf("%s expires in %v", role, left)
		}
	}
	if !exp["timestamp"].Before(exp["snapshot"]) || !exp["snapshot"].Before(exp["root"]) {
		t.Errorf("expiries out of the usual order: %v", exp)
	}

	// Damage the snapshot the timestamp names: the snapshot and the targets
	// it would name are missing, the error names the snapshot.
	snaps, _ := filepath.Glob(filepath.Join(dir, MetadataDir, "*.snapshot.json"))
	for _, s := range snaps {
		os.WriteFile(s, []byte("{"), 0o644)
	}
	exp, err = Expiries(dir)
	if err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("damaged snapshot: %v, want an error naming the snapshot", err)
	}
	if _, ok := exp["snapshot"]; ok {
		t.Errorf("a damaged snapshot still has an expiry: %v", exp)
	}
	if _, ok := exp["timestamp"]; !ok {
		t.Errorf("the timestamp was lost with the snapshot: %v", exp)
	}
	if _, err := Expiries(t.TempDir()); err == nil {
		t.Error("an empty directory has expiries")
	}
}
