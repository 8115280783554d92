#!/usr/bin/env bash
# Measures the agent's idle memory and the CPU of a check-in with nothing
# new against a real server on loopback, and writes the "Agent" section of
# docs/BENCHMARKS.md. Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
command -v curl >/dev/null || { s=""; [ "$(id -u)" -ne 0 ] && s=sudo; $s apt-get install -y -qq curl; }
go build -o bin/bulwark ./cmd/bulwark
out=$(mktemp)
go run ./bench/agent -bin bin/bulwark -runs "${RUNS:-10}" -idle "${IDLE:-15s}" > "$out"
{
	echo "<!-- agent:start -->"
	echo "## Agent"
	echo
	echo "Command: \`bench/agent/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine)."
	echo
	echo "A real update server (SQLite, HTTPS on loopback) hosts a vendor repository with one approved update that"
	echo "does not apply; an agent enrolled with a directory root runs as \`bulwark agent run\`, checks in once and idles."
	echo
	cat "$out"
	echo
	echo "The idle-memory goal (20 MiB) is **not met**: most of the resident set is clean pages of the 30 MB"
	echo "binary (which also holds the server, SQLite and the lockdown rules) touched while starting, which the"
	echo "kernel can drop under pressure; the second row shows that the binary started and doing nothing already"
	echo "takes most of it, so the agent itself adds only the difference. A separate agent build without the"
	echo "server's packages is the way to meet the goal. A check-in with"
	echo "nothing new costs the process start, the load of the verified TUF cache and one small request; the"
	echo "daemon's own check-ins skip the process start."
	echo "<!-- agent:end -->"
} > "$out.md"
bench_write_section agent "$out.md"
rm -f "$out" "$out.md"
echo "bench/agent: figures written to docs/BENCHMARKS.md"
