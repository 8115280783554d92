package lockdown

import "testing"

func TestDetectSession(t *testing.T) {
	root := miniRoot(t, map[string]string{
		"/etc/passwd":                    "root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n",
		"/home/ann/.ssh/authorized_keys": "ssh-ed25519 AAAA ann@laptop\n",
		"/home/bob/.ssh/authorized_keys": "\n",
	})
	tree, err := NewTree(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want Session
	}{
		{"not over ssh", map[string]string{"USER": "root"}, Session{}},
		{"root over ssh", map[string]string{"SSH_CONNECTION": "192.0.2.7 5000 192.0.2.1 22", "USER": "root"}, Session{SSH: true, User: "root", Client: "192.0.2.7"}},
		{"sudo from a key user", map[string]string{"SSH_CONNECTION": "192.0.2.7 5000 192.0.2.1 22", "USER": "root", "SUDO_USER": "ann"}, Session{SSH: true, User: "ann", Client: "192.0.2.7", KeyAuth: true}},
		{"empty authorized_keys", map[string]string{"SSH_CLIENT": "198.51.100.2 5000 22", "USER": "bob"}, Session{SSH: true, User: "bob", Client: "198.51.100.2"}},
	}
	for _, tt := range tests {
		got := DetectSession(func(k string) string { return tt.env[k] }, tree)
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// The guard per rule.
	risky := (&SSHDOption{Option: "PermitRootLogin", Expect: Expect{Value: "no"}}).SessionRisk(tests[1].want)
	safe := (&SSHDOption{Option: "PermitRootLogin", Expect: Expect{Value: "no"}}).SessionRisk(tests[2].want)
	pw := (&SSHDOption{Option: "PasswordAuthentication", Expect: Expect{Value: "no"}}).SessionRisk(tests[3].want)
	mask := (&Service{Unit: "ssh.service", State: "masked"}).SessionRisk(tests[2].want)
	if risky == "" || safe != "" || pw == "" || mask == "" {
		t.Errorf("guard: root %q, key user %q, password user %q, ssh masked %q", risky, safe, pw, mask)
	}
}
