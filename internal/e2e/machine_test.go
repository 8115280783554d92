package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// machine is a real agent enrolled with a server, its machine a directory
// root with its own dpkg database.
type machine struct {
	t        *testing.T
	id       string // the agent id the server gave
	root     string
	state    string
	bootID   string
	reboots  string
	server   string
	caPin    string
	hostname string
}

// newMachine makes a Debian 12 directory root and enrolls its agent with
// the enrollment token.
func newMachine(t *testing.T, serverURL, caPin, siteRoot, token, hostname, machineID string) *machine {
	t.Helper()
	m := &machine{t: t, root: debianRoot(t, hostname, machineID), state: filepath.Join(t.TempDir(), "state"),
		reboots: filepath.Join(t.TempDir(), "reboots"), server: serverURL, caPin: caPin, hostname: hostname}
	m.bootID = filepath.Join(m.state+"-boot", "boot_id")
	os.MkdirAll(filepath.Dir(m.bootID), 0o755)
	os.WriteFile(m.bootID, []byte("boot-1\n"), 0o644)
	e, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: serverURL, Token: token, CAFingerprint: caPin, SiteRootFingerprint: siteRoot, StateDir: m.state,
		Facts: wire.Facts{MachineID: machineID, Hostname: hostname, OS: "debian 12", Arch: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	m.id = e.AgentID
	return m
}

// debianRoot makes a Debian 12 directory root with its own dpkg database,
// a machine id and a hostname.
func debianRoot(t *testing.T, hostname, machineID string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := install.InitRoot(root); err != nil {
		t.Fatal(err)
	}
	for f, c := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "etc/machine-id": machineID + "\n", "etc/hostname": hostname + "\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte(c), 0o644)
	}
	return root
}

// checkIn runs one full check-in cycle of the agent with a policy mode
// (notify, download, auto).
func (m *machine) checkIn(mode string) {
	m.t.Helper()
	settings, err := agent.FileConfig{Server: m.server, CAFingerprint: m.caPin, StateDir: m.state, Root: m.root, Mode: mode,
		AutoInstallSeverity: "important", RebootCommand: []string{"sh", "-c", "echo reboot >> " + m.reboots}, BootIDPath: m.bootID}.Check()
	if err != nil {
		m.t.Fatal(err)
	}
	d, _, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		m.t.Fatal(err)
	}
	defer closeAgent()
	if err := d.CheckIn(context.Background()); err != nil {
		m.t.Fatal(err)
	}
}
