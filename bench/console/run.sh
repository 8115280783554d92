#!/bin/sh
# The console with a large fleet: bench/console fills a real SQLite store
# with N computers (default 100000) through the store's report path, then
# times the dashboard and filtered computer lists as the server answers
# them, and the sqlite3 CLI on the same file as a peer. Not part of the test
# suite. Usage: bench/console/run.sh [computers]
set -eu
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. bench/section.sh
command -v sqlite3 >/dev/null || apt-get install -y sqlite3 >/dev/null
W=$(mktemp -d /tmp/bulwark-bench-console.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/console" ./bench/console
"$W/console" -computers "$N" -dir "$W" | tee "$W/out.txt"
{
	echo "<!-- console:start -->"
	echo "## Console"
	echo
	echo "\`bench/console/run.sh $N\` on $(bench_machine), $(date -u +%Y-%m-%d)."
	echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine was shared with other builds)."
	echo "Server time is the handler's (no TLS, no network), median and 95th percentile of repeated requests."
	echo
	cat "$W/out.txt"
	echo "<!-- console:end -->"
} > "$W/section.md"
bench_write_section console "$W/section.md"
