//go:build !agentonly

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/content/s3test"
)

// TestContentStoreConfig: the S3 content store from the config file, the
// environment and flags, with the key from a 0600 file or the environment,
// opens a real versitygw bucket; every wrong setting is refused with what
// would be valid, before anything is served.
func TestContentStoreConfig(t *testing.T) {
	vg := s3test.Start(t)
	vg.Bucket(t, "bulwark", "")
	creds := filepath.Join(t.TempDir(), "s3.yaml")
	if err := os.WriteFile(creds, []byte("access_key_id: "+vg.AccessKey+"\nsecret_access_key: "+vg.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, file string, env map[string]string, args ...string) error {
		t.Helper()
		p := writeFile(t, filepath.Join(t.TempDir(), "t.yaml"), file, 0o644)
		c, err := loadServerConfig(p, environ(env), serverFlagSet(t, args...))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.contentStore(context.Background(), func(k string) string { return env[k] })
		if err == nil && st == nil && c.ContentStore != "" {
			t.Fatal("no store and no error")
		}
		if err == nil && st != nil {
			if _, err := st.List(context.Background(), ""); err != nil {
				t.Fatalf("list through %s: %v", st, err)
			}
		}
		return err
	}
	keyEnv := map[string]string{"AWS_ACCESS_KEY_ID": vg.AccessKey, "AWS_SECRET_ACCESS_KEY": vg.SecretKey}
	t.Run("file with credentials file", func(t *testing.T) {
		if err := open(t, "content_store: s3://bulwark/site\ns3: {endpoint: "+vg.Endpoint+", credentials_file: "+creds+"}\n", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("environment", func(t *testing.T) {
		env := map[string]string{"BULWARK_CONTENT_STORE": "s3://bulwark", "BULWARK_S3_ENDPOINT": vg.Endpoint}
		for k, v := range keyEnv {
			env[k] = v
		}
		if err := open(t, "", env); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("flags over the file", func(t *testing.T) {
		if err := open(t, "content_store: s3://missing\n", keyEnv, "--content-store", "s3://bulwark/p", "--s3-endpoint", vg.Endpoint); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if err := open(t, "content_store: "+filepath.Join(t.TempDir(), "content")+"\n", nil); err != nil {
			t.Fatal(err)
		}
	})
	vgs := s3test.StartTLS(t)
	vgs.Bucket(t, "bulwark", "")
	tlsEnv := map[string]string{"AWS_ACCESS_KEY_ID": vgs.AccessKey, "AWS_SECRET_ACCESS_KEY": vgs.SecretKey}
	t.Run("https endpoint on a private CA", func(t *testing.T) {
		if err := open(t, "content_store: s3://bulwark\ns3: {endpoint: "+vgs.Endpoint+", ca_file: "+vgs.CAFile+"}\n", tlsEnv); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("https endpoint, CA file by flag", func(t *testing.T) {
		if err := open(t, "content_store: s3://bulwark\ns3: {endpoint: "+vgs.Endpoint+"}\n", tlsEnv, "--s3-ca-file", vgs.CAFile); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("https endpoint the system does not trust", func(t *testing.T) {
		err := open(t, "content_store: s3://bulwark\ns3: {endpoint: "+vgs.Endpoint+"}\n", tlsEnv)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want the endpoint's certificate refused", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if err := open(t, "", nil); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"a relative directory", "content_store: srv/content\n", keyEnv, "want s3://bucket/prefix or an absolute directory"},
		{"a directory with s3 settings", "content_store: /srv/content\ns3: {region: x}\n", keyEnv, "s3 settings do not apply"},
		{"s3 settings alone", "s3: {endpoint: " + vg.Endpoint + "}\n", keyEnv, "without content_store"},
		{"no endpoint", "content_store: s3://bulwark\n", keyEnv, "no s3.endpoint"},
		{"endpoint not a URL", "content_store: s3://bulwark\ns3: {endpoint: 'localhost:9000'}\n", keyEnv, "want https://host:port"},
		{"no credentials", "content_store: s3://bulwark\ns3: {endpoint: " + vg.Endpoint + "}\n", nil, "AWS_ACCESS_KEY_ID"},
		{"wrong secret", "content_store: s3://bulwark\ns3: {endpoint: " + vg.Endpoint + "}\n", map[string]string{"AWS_ACCESS_KEY_ID": vg.AccessKey, "AWS_SECRET_ACCESS_KEY": "wrong"}, "content store s3://bulwark"},
		{"no such bucket", "content_store: s3://nobucket\ns3: {endpoint: " + vg.Endpoint + "}\n", keyEnv, `no bucket "nobucket"`},
		{"bad URL", "content_store: s3:///x\ns3: {endpoint: " + vg.Endpoint + "}\n", keyEnv, "want s3://bucket"},
		{"CA file for plain http", "content_store: s3://bulwark\ns3: {endpoint: " + vg.Endpoint + ", ca_file: " + creds + "}\n", keyEnv, "https endpoints only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := open(t, tc.file, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), vg.SecretKey) {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestAttackS3CredentialsFileReadableByOthers: a credentials file other
// users can read is refused, as key and token files are.
func TestAttackS3CredentialsFileReadableByOthers(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "s3.yaml")
	if err := os.WriteFile(creds, []byte("access_key_id: a\nsecret_access_key: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &serverFileConfig{ContentStore: "s3://bulwark", S3: s3FileConfig{Endpoint: "https://127.0.0.1:1", CredentialsFile: creds}}
	_, err := c.contentStore(context.Background(), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), creds) {
		t.Fatalf("a 0644 credentials file: err = %v, want it refused by name", err)
	}
}
