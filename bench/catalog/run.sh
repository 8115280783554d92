#!/usr/bin/env bash
# Measures the signed catalog at 100, 10,000 and 100,000 updates against an
# APT Packages index of the same size, and writes the figures into the
# "Signed catalog" section of docs/BENCHMARKS.md. Not part of the test run.
#   bench/catalog/run.sh [sizes]      e.g. bench/catalog/run.sh 100,10000
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
sizes=${1:-100,10000,100000}
command -v xz >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -qq xz-utils; }
out=$(mktemp)
go run ./bench/catalog -sizes "$sizes" > "$out"
{
	echo "<!-- catalog:start -->"
	echo "## Signed catalog"
	echo
	echo "Command: \`bench/catalog/run.sh $sizes\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine)."
	echo
	echo "Each catalog is built in a fresh repository with the default 1024 bins, then one more update is published"
	echo "five times through the same code path as \`bulwark repo publish DIR ONE.yaml\` (every file fsynced). A new"
	echo "client with only the root then looks one update up over HTTP on loopback; every response byte is counted,"
	echo "served as is (raw) and gzip-compressed (what the update server and any CDN send to a client that accepts"
	echo "it). The peer is an APT repository of the same size: the Packages index an apt client downloads whole to"
	echo "look any package up, and the time to recompress it with xz, which a repository does on every publish."
	echo
	cat "$out"
	echo "<!-- catalog:end -->"
} > "$out.md"
bench_write_section catalog "$out.md"
rm -f "$out" "$out.md"
echo "bench/catalog: figures written to docs/BENCHMARKS.md"
