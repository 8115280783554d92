#!/usr/bin/env bash
# Measures how fast the update server serves a payload from its repository
# directory and from an S3 content store (a real versitygw on loopback),
# against curl fetching the same object from versitygw directly; writes the
# "Content store" section of docs/BENCHMARKS.md. Not part of the test run.
# SIZE (bytes, default 512 MiB) and ROUNDS (default 3) scale it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
export PATH="$(go env GOPATH)/bin:$PATH"
. scripts/setup.d/versitygw.sh
out=$(mktemp)
go run ./bench/content -bytes "${SIZE:-536870912}" -rounds "${ROUNDS:-3}" -versitygw "$(command -v versitygw)" > "$out"
{
	echo "<!-- content-store:start -->"
	echo "## Content store"
	echo
	echo "Command: \`bench/content/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine)."
	echo
	echo "One update server hosts a vendor repository with one random payload and serves it from the repository"
	echo "directory (the default); a second serves it from an S3 content store (\`--content-store s3://bulwark/site\`,"
	echo "versitygw $(go version -m "$(command -v versitygw)" | awk '$1=="mod"{print $3}') over a directory on the same disk,"
	echo "reached over plain HTTP on loopback): each request is streamed from one GET to versitygw."
	echo "The peer is curl fetching the same object from versitygw directly. Every download is one curl process on"
	echo "loopback; the servers are measured over HTTPS (TLS 1.3) and over their plain HTTP listener (\`--http\`, the"
	echo "like-for-like comparison with versitygw's plain HTTP). The machine is shared with other engineers' builds"
	echo "unless the load average below says otherwise."
	echo
	cat "$out"
	echo
	echo "Agents download over HTTPS, where TLS encryption on the server's core bounds both stores alike; over plain"
	echo "HTTP the directory is served with sendfile, while every byte from S3 passes through the server (one read"
	echo "from versitygw's socket, one write to the client's), which is the cost of not holding payloads on the replica."
	echo "<!-- content-store:end -->"
} > "$out.md"
bench_write_section content-store "$out.md"
rm -f "$out" "$out.md"
echo "bench/content: figures written to docs/BENCHMARKS.md"
