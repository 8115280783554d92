#!/usr/bin/env bash
# Measures the agent's idle memory and the CPU of a check-in with nothing
# new against a real server on loopback, for the lean build the agent unit
# runs (go build -tags agentonly) and the full bulwark binary, with curl over
# the same mutual TLS as the peer in the same run, and writes the "Agent"
# section of docs/BENCHMARKS.md. Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
command -v curl >/dev/null || { s=""; [ "$(id -u)" -ne 0 ] && s=sudo; $s apt-get install -y -qq curl; }
# Built the way scripts/package builds what the packages ship.
flags=(-trimpath -buildvcs=false -ldflags "-s -w")
CGO_ENABLED=0 go build "${flags[@]}" -o bin/bulwark ./cmd/bulwark
CGO_ENABLED=0 go build "${flags[@]}" -tags agentonly -o bin/bulwark-agent ./cmd/bulwark
out=$(mktemp)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
go run ./bench/agent -bin bin/bulwark -lean bin/bulwark-agent -runs "${RUNS:-10}" -idle "${IDLE:-15s}" > "$out"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "<!-- agent:start -->"
	echo "## Agent"
	echo
	echo "Command: \`bench/agent/run.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine); load average $load_start at the start, $load_end at the end"
	echo "(above 2, other engineers' builds and tests shared the machine: the CPU figures are noisy)."
	echo
	echo "A real update server (SQLite, HTTPS on loopback) hosts a vendor repository with one approved update that"
	echo "does not apply; an agent enrolled with a directory root checks in once and idles, first as the lean build"
	echo "the \`bulwark-agent\` package's unit runs (\`/usr/libexec/bulwark/bulwark-agent run\`, built with"
	echo "\`-tags agentonly\`: no server, SQLite, PostgreSQL, console or metrics packages), then as \`bulwark agent run\`"
	echo "of the full binary. Both are built as scripts/package builds them (no cgo, \`-trimpath -s -w\`). The peer is"
	echo "curl fetching the site timestamp over the same mutual TLS, interleaved with the agent's runs."
	echo
	echo "Sizes: lean $(du -h bin/bulwark-agent | cut -f1), full $(du -h bin/bulwark | cut -f1)."
	echo
	cat "$out"
	echo
	echo "\"Mapped from the binary\" is clean pages of the executable; \"anonymous\" is the Go heap, stacks and runtime."
	echo "Before idling, the daemon returns the heap a cycle used (\`debug.FreeOSMemory\`) and pages out the pages of"
	echo "its executable that starting and checking in touched (\`madvise(MADV_PAGEOUT)\`, internal/agent/idle_linux.go):"
	echo "that is most of the difference between the peak and the idle figure, and the next check-in reads those pages"
	echo "again (its CPU row includes that). The daemon's check-in is measured at its second check-in (the agent is"
	echo "configured with the shortest interval, 1m): one conditional request answered 304 on a resumed TLS session."
	echo "\`run --once\` runs after the daemon's full cycle, so within six hours of it: it asks the server with the ETag that"
	echo "cycle kept in \`checkin.json\`, gets a 304 with nothing due, runs no cycle and says \"No cycle ran\" (a run that does not"
	echo "say so is not counted). \`run --once --full\` is the whole cycle in a new process: the process start, the check-in, the"
	echo "TUF refresh of the site and vendor repositories from the verified cache (go-tuf parsing and verifying the cached"
	echo "snapshot of 1024 bins is the largest part), the plan, and the report with the inventory. Both collect no garbage"
	echo "below 256 MiB (they exit anyway)."
	echo "<!-- agent:end -->"
} > "$out.md"
bench_write_section agent "$out.md"
rm -f "$out" "$out.md"
echo "bench/agent: figures written to docs/BENCHMARKS.md"
