# shellcheck shell=bash
# versitygw, a real S3-compatible server, for the content store's
# conformance suite and the server's S3 tests (internal/content/s3test starts
# it on a loopback port over a temporary directory, as the test user, and
# stops it). It is built from the Go module proxy with `go install` into
# $(go env GOPATH)/bin, which scripts/test puts on PATH. Keep the version in
# step with s3test.Version. Sourced by scripts/test.
versitygw_version=v1.8.0
if ! go version -m "$(go env GOPATH)/bin/versitygw" 2>/dev/null | grep -q "mod[[:space:]]*github.com/versity/versitygw[[:space:]]*${versitygw_version}"; then
	echo "scripts/test: installing versitygw ${versitygw_version}"
	go install "github.com/versity/versitygw/cmd/versitygw@${versitygw_version}"
fi
