package lockdown

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzImageFiles puts the fuzzer's bytes into every configuration file the
// built-in rules read from an image (sshd_config, sysctl.conf, login.defs,
// limits.conf, modprobe.d, fstab, the dpkg database, passwd, group,
// nginx.conf) and runs every rule's Check and Apply against the staged tree.
// Nothing may panic or hang, whatever a hostile image holds.
func FuzzImageFiles(f *testing.F) {
	f.Add([]byte("PermitRootLogin yes\nInclude /etc/ssh/sshd_config\n"))
	f.Add([]byte("net.ipv4.ip_forward = 1\n-kernel.yama.ptrace_scope=0\n"))
	f.Add([]byte("Package: telnet\nStatus: install ok installed\nVersion: 1\n\n"))
	f.Add([]byte("tmpfs /dev/shm tmpfs defaults 0 0\n/dev/sda1 /tmp ext4\n"))
	f.Add([]byte("root:x:0:0::/root:/bin/sh\nshadow:x:42:\n"))
	f.Add([]byte("http { server { listen 80; } include /etc/nginx/nginx.conf; }"))
	f.Add([]byte("install cramfs /bin/false\n* hard core 0\nUMASK 027\n"))
	f.Add([]byte("Defaults !use_pty, logfile=\"/tmp/x\"\n-w /etc/sudoers.d/ -p wa -k scope\nminlen = 8\ndeclare -xr TMOUT=99999\nrotate 4\nweekly\n"))
	c := testCatalog(f)
	var sel []Selected
	for _, r := range c.Rules() {
		res, err := c.Instantiate(r, nil)
		if err != nil {
			f.Fatal(err)
		}
		sel = append(sel, Selected{Rule: r, Resource: res})
	}
	files := []string{"etc/ssh/sshd_config", "etc/sysctl.conf", "etc/login.defs", "etc/security/limits.conf",
		"etc/modprobe.d/x.conf", "etc/fstab", "var/lib/dpkg/status", "etc/passwd", "etc/group", "etc/nginx/nginx.conf",
		"etc/sudoers", "etc/security/pwquality.conf", "etc/audit/auditd.conf", "etc/audit/rules.d/x.rules", "etc/profile",
		"etc/bash.bashrc", "etc/logrotate.conf", "etc/chrony/chrony.conf", "etc/rsyslog.conf"}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		for _, p := range files {
			hp := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hp, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tree, err := NewTree(root)
		if err != nil {
			t.Fatal(err)
		}
		env := &Env{Tree: tree}
		for _, s := range sel {
			_ = s.Resource.Check(context.Background(), env)
			_ = s.Resource.Apply(context.Background(), env)
		}
		if _, err := tree.Changes(); err != nil {
			t.Fatal(err)
		}
	})
}
