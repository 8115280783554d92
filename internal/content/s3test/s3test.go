// Package s3test starts a real S3-compatible server for tests and
// benchmarks: versitygw (scripts/setup.d/versitygw.sh installs it with
// `go install`) serving a fresh temporary directory on a loopback port, as
// the user running the test, with a random access key passed in its
// environment (never on its command line).
//
// When versitygw is not installed, Start fails the test under CI (CI set)
// and skips it elsewhere with the command that installs it.
//
// It must not be imported outside tests and benchmarks.
package s3test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/pki"
)

// Version is the versitygw release scripts/setup.d/versitygw.sh installs.
const Version = "v1.8.0"

// Server is one running versitygw.
type Server struct {
	Dir       string // its storage directory: one subdirectory per bucket
	Endpoint  string // http://127.0.0.1:port, or https:// (StartTLS)
	AccessKey string
	SecretKey string
	CAFile    string // StartTLS: the CA its certificate chains to
}

// Binary finds versitygw: $BULWARK_VERSITYGW, then PATH, then GOPATH/bin.
func Binary() (string, error) {
	if p := os.Getenv("BULWARK_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(trimNL(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is not installed: run scripts/test once, or go install github.com/versity/versitygw/cmd/versitygw@%s", Version)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Start starts versitygw for the test, over plain HTTP, and stops it when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS starts versitygw over HTTPS with a certificate for 127.0.0.1
// from a CA made for the test (CAFile), as an object store on a private CA.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := &Server{Dir: t.TempDir(), AccessKey: random(10), SecretKey: random(20)}
	var tlsArgs []string
	scheme := "http://"
	if withTLS {
		dir := t.TempDir()
		if _, _, err := pki.LoadOrCreate(dir, pki.Options{Name: "s3test CA", Hosts: []string{"127.0.0.1"}}); err != nil {
			t.Fatal(err)
		}
		s.CAFile = filepath.Join(dir, pki.CACertFile)
		tlsArgs = []string{"--cert", filepath.Join(dir, pki.ServerCertFile), "--key", filepath.Join(dir, pki.ServerKeyFile)}
		scheme = "https://"
	}
	for attempt := 0; ; attempt++ {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Endpoint = scheme + addr
		cmd := exec.Command(bin, append(append([]string{"--port", addr, "--quiet"}, tlsArgs...), "posix", s.Dir)...)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
		logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{}) // closed: up may see it and the kill below still waits
		go func() { cmd.Wait(); logf.Close(); close(exited) }()
		if s.up(exited) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return s
		}
		cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(logf.Name())
		if attempt == 4 {
			t.Fatalf("versitygw did not start on %s: %s", addr, log)
		}
	}
}

// up waits until the versitygw just started answers at s.Endpoint, or
// exits (it does when another process took the port between freePort and
// its bind). It is ours when a request signed with its random keys
// succeeds: another server on that port, even another versitygw, refuses
// the keys, and a bare connect would not tell them apart.
func (s *Server) up(exited <-chan struct{}) bool {
	c, err := s.client()
	if err != nil {
		return false
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}

// freePort is a loopback address free when asked; another process may
// take it before versitygw binds it (up tells).
var freePort = func() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Bucket makes a new bucket and returns the content store configuration
// for s3://bucket/prefix on this server.
func (s *Server) Bucket(t testing.TB, bucket, prefix string) content.S3Config {
	t.Helper()
	c, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", bucket, err)
	}
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return content.S3Config{URL: u, Endpoint: s.Endpoint, AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, CAFile: s.CAFile}
}

// client is a path-style S3 client with the server's keys.
func (s *Server) client() (*minio.Client, error) {
	opts := &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), BucketLookup: minio.BucketLookupPath}
	host, secure := strings.CutPrefix(s.Endpoint, "https://")
	host = strings.TrimPrefix(host, "http://")
	if secure {
		b, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		opts.Secure = true
		opts.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	return minio.New(host, opts)
}

// Open makes a bucket and opens a content store in it.
func (s *Server) Open(t testing.TB, bucket, prefix string) *content.S3 {
	t.Helper()
	st, err := content.OpenS3(context.Background(), s.Bucket(t, bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
