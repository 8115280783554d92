//go:build !agentonly

package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/capread"
)

// TestAttackSecretFilesReadableByOthers (F17): token files and configs that
// hold a token or a database password are refused when the group or other
// users can read them, the same check key files get (capread.CheckPrivate).
func TestAttackSecretFilesReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name string
		read func() error
		ok   bool
	}{
		{"token file 0600", func() error {
			_, err := readTokenFile("token-file", write("a.token", "bwa_x\n", 0o600), nil)
			return err
		}, true},
		{"token file 0644", func() error {
			_, err := readTokenFile("token-file", write("b.token", "bwa_x\n", 0o644), nil)
			return err
		}, false},
		{"token file 0640", func() error {
			_, err := readTokenFile("token-file", write("c.token", "bwa_x\n", 0o640), nil)
			return err
		}, false},
		{"server config with an upstream token, 0644", func() error {
			_, err := loadServerConfig(write("s1.yaml", "upstream:\n  url: https://hq:8443\n  token: bwa_x\n", 0o644), nil, nil)
			return err
		}, false},
		{"server config with a database password, 0644", func() error {
			_, err := loadServerConfig(write("s2.yaml", "database: postgres://bulwark:secret@db:5432/bulwark\n", 0o644), nil, nil)
			return err
		}, false},
		{"server config with a token, 0600", func() error {
			_, err := loadServerConfig(write("s3.yaml", "upstream:\n  url: https://hq:8443\n  token: bwa_x\n", 0o600), nil, nil)
			return err
		}, true},
		{"server config without secrets, 0644", func() error {
			_, err := loadServerConfig(write("s4.yaml", "listen: \":8443\"\n", 0o644), nil, nil)
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.read()
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && !errors.Is(err, capread.ErrReadableByOthers) {
				t.Fatalf("err = %v, want a refusal for a file others can read", err)
			}
		})
	}
}

func TestReadTokenFileStdin(t *testing.T) {
	for in, want := range map[string]string{"bwe_abc\n": "bwe_abc", "  bwe_abc  \nrest\n": "bwe_abc", "bwe_abc": "bwe_abc", "\n": ""} {
		got, err := readTokenFile("token-file", "-", io.Reader(strings.NewReader(in)))
		if want == "" {
			if err == nil {
				t.Errorf("%q: accepted an empty token", in)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}
