package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// A configuration baseline delivered as an update: the lockdown handler
// applies the profile to a root and uninstall restores every byte.
func TestLockdownHandlerAppliesAndUndoes(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"etc/login.defs":               "PASS_MAX_DAYS 90\nUMASK 022\nPASS_MIN_DAYS 1\nENCRYPT_METHOD SHA512\n",
		"etc/ssh/sshd_config":          "Include /etc/ssh/sshd_config.d/*.conf\nX11Forwarding yes\n",
		"etc/ssh/sshd_config.d/README": "drop-ins go here\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	h, err := ForType(catalog.InstallerLockdown, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := &catalog.Update{ID: "BW-BASELINE-1", Installer: catalog.Installer{Type: catalog.InstallerLockdown, Profile: "small-business"}, Reboot: catalog.RebootNever, Uninstallable: true}
	req := Request{Update: u, Root: root, StateDir: t.TempDir()}
	res, err := h.Install(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/login.defs"))
	if !strings.Contains(string(b), "UMASK 027") || !strings.Contains(res.Output, "rules fixed") {
		t.Fatalf("after install: login.defs %q, output %q", b, res.Output)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ssh/sshd_config")); !strings.Contains(string(b), "\nPermitRootLogin no\n") {
		t.Fatalf("sshd_config after install does not set PermitRootLogin: %q", b)
	}
	if _, err := h.Uninstall(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != c {
			t.Fatalf("%s not restored: %q", p, b)
		}
	}
	bad := &catalog.Update{ID: "BW-BASELINE-2", Installer: catalog.Installer{Type: catalog.InstallerLockdown, Profile: "no-such-profile"}}
	if _, err := h.Install(context.Background(), Request{Update: bad, Root: root, StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no-such-profile") {
		t.Fatalf("unknown profile: %v", err)
	}
}
