#!/usr/bin/env bash
# Measures a full sync of 10,000 updates with 1 GiB of payloads against one
# sequential curl of the same files, and a sync with nothing new; writes the
# "Sync" section of docs/BENCHMARKS.md. Not part of the test run. Needs about
# 3 GiB of free disk for the repository, the mirror and curl's copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v curl >/dev/null || { s=""; [ "$(id -u)" -ne 0 ] && s=sudo; $s apt-get install -y -qq curl; }
out=$(mktemp)
go run ./bench/sync -updates "${UPDATES:-10000}" -bytes "${BYTES:-1073741824}" > "$out"
{
	echo "<!-- sync:start -->"
	echo "## Sync"
	echo
	echo "Command: \`bench/sync/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)."
	echo
	echo "A vendor repository (1024 bins) is served by Go's file server over HTTP on loopback. \`tuf.Mirror\`, the"
	echo "sync behind a site server's upstream mode, mirrors it into an empty directory, verifying every metadata file"
	echo "from the pinned root and every target against its signed hash before the switch; then it syncs again with"
	echo "nothing new. The peer is one curl process fetching the same files one after another from the same server,"
	echo "verifying nothing. Page caches are dropped before each full run."
	echo
	cat "$out"
	echo "<!-- sync:end -->"
} > "$out.md"
python3 - "$out.md" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
p = "docs/BENCHMARKS.md"
s = open(p).read()
if "<!-- sync:start -->" in s:
    s = re.sub(r"<!-- sync:start -->.*?<!-- sync:end -->\n?", lambda m: new, s, flags=re.S)
else:
    s = s.rstrip("\n") + "\n\n" + new
open(p, "w").write(s)
PY
rm -f "$out" "$out.md"
echo "bench/sync: figures written to docs/BENCHMARKS.md"
