package content

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/capread"
)

// S3Config says where an S3-compatible content store is and how to sign
// in. There is no default endpoint: it is always named.
type S3Config struct {
	// URL is s3://bucket or s3://bucket/prefix.
	URL string
	// Endpoint is https://host:port (or http:// for a store on loopback
	// or a private link: the bytes are verified by agents against signed
	// TUF hashes, and requests are signed, never carrying the secret).
	Endpoint string
	Region   string // default us-east-1
	// AccessKeyID and SecretAccessKey sign requests (LoadS3Credentials).
	AccessKeyID, SecretAccessKey string
	// CAFile, for an https endpoint, is a PEM file of the CA certificates
	// its certificate must chain to (a private CA); "" uses the system's.
	CAFile string
	// Transport, when set, carries the requests (and CAFile is ignored).
	Transport http.RoundTripper
	// MaxRetries bounds the attempts of one request; 0 is minio-go's
	// default (10).
	MaxRetries int
}

// S3 is a content store in a bucket of S3-compatible object storage,
// addressed path-style when the endpoint is not AWS's (versitygw, MinIO,
// Ceph). A single PUT, or a multipart upload's completion, makes an object
// visible whole, so Put is atomic.
type S3 struct {
	c        *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string
}

// IsS3URL reports whether a content store location is an s3:// URL.
func IsS3URL(s string) bool { return strings.HasPrefix(s, "s3://") }

// OpenS3 connects to the store and checks that the bucket exists.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("content store %q: want s3://bucket or s3://bucket/prefix", cfg.URL)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := CheckKey(prefix); err != nil {
			return nil, fmt.Errorf("content store %q: prefix: %w", cfg.URL, err)
		}
		prefix += "/"
	}
	e, err := url.Parse(cfg.Endpoint)
	if err != nil || (e.Scheme != "https" && e.Scheme != "http") || e.Host == "" || (e.Path != "" && e.Path != "/") || e.User != nil {
		return nil, fmt.Errorf("content store endpoint %q: want https://host:port (or http:// for a store on a private link)", cfg.Endpoint)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, fmt.Errorf("content store %s: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file)", cfg.URL)
	}
	tr := cfg.Transport
	if cfg.CAFile != "" && tr == nil {
		if e.Scheme != "https" {
			return nil, fmt.Errorf("content store endpoint %s: a CA file applies to https endpoints only", cfg.Endpoint)
		}
		b, err := capread.File(cfg.CAFile, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("content store CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("content store CA %s: no PEM certificate in it", cfg.CAFile)
		}
		t, err := minio.DefaultTransport(true)
		if err != nil {
			return nil, err
		}
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = pool
		tr = t
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	c, err := minio.New(e.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       e.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupAuto,
		Transport:    tr,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", cfg.URL, err)
	}
	s := &S3{c: c, bucket: u.Host, prefix: prefix, endpoint: e.Scheme + "://" + e.Host}
	ok, err := c.BucketExists(ctx, s.bucket)
	if err != nil {
		return nil, fmt.Errorf("content store %s at %s: %w", cfg.URL, s.endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("content store %s at %s: no bucket %q (create it first)", cfg.URL, s.endpoint, s.bucket)
	}
	return s, nil
}

func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix + " at " + s.endpoint }

type s3Object struct {
	*minio.Object
	info Info
}

func (o *s3Object) Info() Info { return o.info }

// Open implements Store: the object is read lazily, one GET from the
// position of each seek, so a Range request costs one ranged GET.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.err(key, err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, s.err(key, err)
	}
	return &s3Object{Object: o, info: Info{Key: key, Size: st.Size, ModTime: st.LastModified}}, nil
}

func (s *S3) err(key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket:
		return fmt.Errorf("content %s: %w", key, fs.ErrNotExist)
	}
	return fmt.Errorf("content %s: %w", key, err)
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	// Content-MD5 on every request (each part read whole before it is
	// sent): an S3 server must then refuse a body that was cut short. Over
	// https minio-go otherwise sends UNSIGNED-PAYLOAD, and versitygw v1.8.0
	// was seen storing the first bytes of a PUT whose body ended early
	// (TestConformance "s3 over https": a failed upload left 30 KiB).
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, r, size, minio.PutObjectOptions{ContentType: "application/octet-stream", SendContentMd5: true})
	if err != nil {
		return fmt.Errorf("content %s: put: %w", key, err)
	}
	return nil
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("content store %s: list: %w", s, o.Err)
		}
		out = append(out, Info{Key: strings.TrimPrefix(o.Key, s.prefix), Size: o.Size, ModTime: o.LastModified})
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil && !errors.Is(s.err(key, err), fs.ErrNotExist) {
		return fmt.Errorf("content %s: delete: %w", key, err)
	}
	return nil
}

// LoadS3Credentials reads the access key from file (YAML with
// access_key_id and secret_access_key, refused unless only its owner can
// read it) or, when file is "", from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY. Secrets never come from the command line.
func LoadS3Credentials(file string, getenv func(string) string) (id, secret string, err error) {
	if file == "" {
		id, secret = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return "", "", errors.New("S3 content store: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or s3.credentials_file (a 0600 file with access_key_id and secret_access_key)")
		}
		return id, secret, nil
	}
	b, err := capread.Secret(file, 64<<10)
	if err != nil {
		return "", "", fmt.Errorf("S3 credentials: %w", err)
	}
	var f struct {
		ID     string `yaml:"access_key_id"`
		Secret string `yaml:"secret_access_key"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil || f.ID == "" || f.Secret == "" {
		return "", "", fmt.Errorf("S3 credentials %s: want YAML with access_key_id and secret_access_key", file)
	}
	return f.ID, f.Secret, nil
}
