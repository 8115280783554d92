//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/content"
)

// s3FileConfig is the s3: section of the server's config file: where the
// S3-compatible content store is. The access key comes from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or from CredentialsFile (a
// 0600 YAML file), never from the command line or this file.
type s3FileConfig struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	CredentialsFile string `yaml:"credentials_file"`
	// CAFile is a PEM file of the CA an https endpoint's certificate
	// chains to, when it is not one the system trusts.
	CAFile string `yaml:"ca_file"`
}

type contentFlags struct {
	store, endpoint, region, credentialsFile, caFile string
}

func (cf *contentFlags) register(f *pflag.FlagSet) {
	f.StringVar(&cf.store, "content-store", "", "where replicas share the vendor repositories' payloads: s3://bucket/prefix, or an absolute directory path (default: served from the repositories' directories)")
	f.StringVar(&cf.endpoint, "s3-endpoint", "", "the S3-compatible store's URL, https://host:port (path-style addressing for anything but AWS)")
	f.StringVar(&cf.region, "s3-region", "", "the S3 region (default us-east-1)")
	f.StringVar(&cf.caFile, "s3-ca-file", "", "a PEM file of the CA the S3 endpoint's certificate chains to (default: the system's CAs)")
	f.StringVar(&cf.credentialsFile, "s3-credentials-file", "", "a 0600 YAML file with access_key_id and secret_access_key (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
}

func (cf *contentFlags) apply(set func(string) bool, c *serverFileConfig) {
	for _, f := range []struct {
		name     string
		dst, val *string
	}{
		{"content-store", &c.ContentStore, &cf.store},
		{"s3-endpoint", &c.S3.Endpoint, &cf.endpoint},
		{"s3-region", &c.S3.Region, &cf.region},
		{"s3-credentials-file", &c.S3.CredentialsFile, &cf.credentialsFile},
		{"s3-ca-file", &c.S3.CAFile, &cf.caFile},
	} {
		if set(f.name) {
			*f.dst = *f.val
		}
	}
}

// contentStore opens the configured content store: nil when none is set.
func (c *serverFileConfig) contentStore(ctx context.Context, getenv func(string) string) (content.Store, error) {
	if c.ContentStore == "" {
		if c.S3 != (s3FileConfig{}) {
			return nil, fmt.Errorf("s3 settings given without content_store (--content-store s3://bucket/prefix)")
		}
		return nil, nil
	}
	if filepath.IsAbs(c.ContentStore) {
		if c.S3 != (s3FileConfig{}) {
			return nil, fmt.Errorf("content_store %s is a directory: s3 settings do not apply", c.ContentStore)
		}
		return content.OpenDir(c.ContentStore)
	}
	if !content.IsS3URL(c.ContentStore) {
		return nil, fmt.Errorf("content_store %q: want s3://bucket/prefix or an absolute directory path, or leave it empty to serve payloads from the repositories' directories", c.ContentStore)
	}
	if c.S3.Endpoint == "" {
		return nil, fmt.Errorf("content_store %s: no s3.endpoint (--s3-endpoint https://host:port)", c.ContentStore)
	}
	id, secret, err := content.LoadS3Credentials(c.S3.CredentialsFile, getenv)
	if err != nil {
		return nil, err
	}
	return content.OpenS3(ctx, content.S3Config{URL: c.ContentStore, Endpoint: c.S3.Endpoint, Region: c.S3.Region, AccessKeyID: id, SecretAccessKey: secret, CAFile: c.S3.CAFile})
}
