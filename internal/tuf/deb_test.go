package tuf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/catalog"
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

func debYAML(t *testing.T, dir, id, file, extra string) string {
	t.Helper()
	y := filepath.Join(dir, id+".yaml")
	os.WriteFile(y, []byte("id: "+id+"\ntitle: t\nproduct: debian-12\nclassification: security\nseverity: critical\nreleased: 2026-11-20\nreboot: never\ninstaller: {type: deb}\npayloads: [{file: "+file+"}]\n"+extra), 0o644)
	return y
}

// Publish reads each .deb payload: package, version and architecture go
// into the signed update.json and the result.
func TestPublishRecordsDebPackage(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	src := t.TempDir()
	deb := debtest.Build(t, src, debtest.Package{Name: "bw-lib", Version: "1:2.0-1", Arch: "amd64"})
	res, err := tr.repo.Publish(context.Background(), debYAML(t, src, "BW-D", filepath.Base(deb), "applies_to: [{deb: {package: bw-lib, version_lt: \"1:2.0-1\"}}]\n"), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 1 || res.Packages[0] != (catalog.PayloadDeb{Package: "bw-lib", Version: "1:2.0-1", Architecture: "amd64"}) {
		t.Fatalf("packages = %+v", res.Packages)
	}
	e, err := tr.repo.Show(context.Background(), "BW-D")
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Update.Payloads[0].Deb; d == nil || d.Package != "bw-lib" || d.Version != "1:2.0-1" {
		t.Fatalf("update.json payload = %+v", e.Update.Payloads[0])
	}
}

// A text file named .deb, and an applies_to that would hold for ever, are
// refused at publish with the field and what is valid; nothing is published.
func TestPublishRefusesBadDebPayloads(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "fake_1.0_amd64.deb"), []byte("not a package\n"), 0o644)
	deb := debtest.Build(t, src, debtest.Package{Name: "bw-lib", Version: "1.0"})
	for _, tt := range []struct{ name, file, extra, want string }{
		{"text_named_deb", "fake_1.0_amd64.deb", "", "payloads[0].file: installer type deb needs a Debian binary package"},
		{"applies_for_ever", filepath.Base(deb), "applies_to: [{deb: {package: bw-lib, version_lt: \"2.0\"}}]\n", "applies_to[0].deb.version_lt 2.0 still holds once the payload's version 1.0 is installed"},
		{"absent_for_ever", filepath.Base(deb), "applies_to: [{deb: {package: bw-lib, installed: false}}]\n", "says bw-lib is not installed, but the update installs it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tr.repo.Publish(context.Background(), debYAML(t, src, "BW-BAD", tt.file, tt.extra), PublishOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := tr.repo.Show(context.Background(), "BW-BAD"); err == nil {
				t.Fatal("the refused update was published")
			}
		})
	}
}

// A repository an earlier release published with a text file as a deb
// payload: verify reports it.
func TestVerifyRefusesTextDeb(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	readDebPayload = func(*catalog.Update, string) (*catalog.PayloadDeb, error) { return nil, nil }
	t.Cleanup(func() { readDebPayload = readDebPayloadFile })
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "fake_1.0_amd64.deb"), []byte("not a package\n"), 0o644)
	if _, err := tr.repo.Publish(context.Background(), debYAML(t, src, "BW-OLD", "fake_1.0_amd64.deb", ""), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "update BW-OLD payload fake_1.0_amd64.deb: installer type deb needs a Debian binary package") {
		t.Fatalf("problems = %v", rep.Problems)
	}
}
