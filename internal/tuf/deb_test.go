package tuf

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// A real .deb built with dpkg-deb goes through publish and comes back out of
// a client reading the repository from a directory (file:// URLs, as from
// offline media) byte for byte, and dpkg-deb still reads it.
func TestRealDebThroughDirectoryClient(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	src := t.TempDir()
	deb := debtest.Build(t, src, debtest.Package{Name: "hello-bulwark", Version: "1.0.1", Files: map[string]string{"/usr/share/doc/hello-bulwark/NEWS": "fixed\n"}})
	y := filepath.Join(src, "u.yaml")
	os.WriteFile(y, []byte(`id: BW-DEB-1
title: real deb
product: debian-12
classification: security
severity: critical
released: 2026-11-20
reboot: required
installer: {type: deb}
payloads: [{file: `+filepath.Base(deb)+`}]
`), 0o644)
	ctx := context.Background()
	if _, err := tr.repo.Publish(ctx, y, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{
		TrustedRoot: tr.read("metadata/root.json"),
		MetadataURL: "file://" + filepath.Join(tr.dir, MetadataDir),
		TargetsURL:  "file://" + filepath.Join(tr.dir, TargetsDir),
		CacheDir:    t.TempDir(),
		Now:         tr.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Update(ctx, "BW-DEB-1")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := c.Payload(ctx, info, filepath.Base(deb))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "got.deb")
	if err := c.Download(ctx, tf, dst, fetch.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(deb)
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(want, got) {
		t.Fatal("downloaded .deb differs from the published one")
	}
	out, err := exec.Command("dpkg-deb", "--field", dst, "Package").Output()
	if err != nil || string(bytes.TrimSpace(out)) != "hello-bulwark" {
		t.Fatalf("dpkg-deb --field: %q %v", out, err)
	}
}
