// Package benchrepo builds the vendor repositories that benchmarks measure:
// n security updates whose random payloads (archives, never installed) add
// up to total bytes, published in batches of 2000. It is for the programs under bench/ only.
package benchrepo

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Build makes the repository in dir (work files go in dir + ".src") and
// returns its first root.
func Build(ctx context.Context, dir string, n int, total int64) ([]byte, error) {
	r, err := tuf.Init(dir, tuf.InitOptions{Name: "bench"}, tuf.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	src := dir + ".src"
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	size := total / int64(n)
	var batch []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("BW-%06d", i)
		payload := make([]byte, size)
		rand.Read(payload)
		if err := os.WriteFile(filepath.Join(src, id+".tar.zst"), payload, 0o644); err != nil {
			return nil, err
		}
		y := filepath.Join(src, id+".yaml")
		if err := os.WriteFile(y, []byte(fmt.Sprintf("id: %s\ntitle: t\nproduct: debian-12\nclassification: security\nseverity: low\nreleased: 2026-11-20\nreboot: never\ninstaller: {type: archive, prefix: /opt/bw-bench}\npayloads: [{file: %s.tar.zst}]\n", id, id)), 0o644); err != nil {
			return nil, err
		}
		batch = append(batch, y)
		if len(batch) == 2000 || i == n {
			if _, err := r.PublishMany(ctx, batch, tuf.PublishOptions{}); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return os.ReadFile(filepath.Join(dir, tuf.MetadataDir, "1.root.json"))
}
