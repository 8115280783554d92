//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"path/filepath"

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
