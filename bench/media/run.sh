#!/usr/bin/env bash
# Measures `bulwark media create` (directory and ISO) for 1 GiB of payloads
# against tar + xorriso of the same files, and `media import` against a sync
# of the same content; writes the "Offline media" section of
# docs/BENCHMARKS.md. Not part of the test run. Needs xorriso and about
# 5 GiB of free disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
command -v xorriso >/dev/null || { s=""; [ "$(id -u)" -ne 0 ] && s=sudo; $s apt-get install -y -qq xorriso; }
out=$(mktemp)
go run ./bench/media -updates "${UPDATES:-256}" -bytes "${BYTES:-1073741824}" > "$out"
{
	echo "<!-- media:start -->"
	echo "## Offline media"
	echo
	echo "Command: \`bench/media/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine); load average $(cut -d' ' -f1 /proc/loadavg) when the run ended."
	echo
	echo "A vendor repository of ${UPDATES:-256} updates with $(( ${BYTES:-1073741824} >> 20 )) MiB of random payloads. \`media.Create\`"
	echo "verifies the repository from its root, copies every file hashing it against its signed hash, writes the"
	echo "manifest, and \`media.WriteISO\` runs xorriso; the peer archives the same repository directory with"
	echo "\`tar -cf\` and makes an ISO of it with the same xorriso options, verifying nothing. \`media import\` verifies"
	echo "the media and runs \`tuf.Mirror\` over file:// into an empty data directory; the peer is the same"
	echo "\`tuf.Mirror\` syncing the same repository over HTTP on loopback. Each pair runs twice, alternating, and"
	echo "the faster run of each is shown; page caches are warm (the benchmark does not drop them)."
	echo
	cat "$out"
	echo
	echo "The machine is shared with other builds (see the load average): media creation hashes every byte"
	echo "(SHA-256, checked against the signed hash) and flushes the directory once before renaming it into place,"
	echo "CPU and I/O that \`tar\` does not do, so the create ratio moves most with the load (one file at a time it"
	echo "measured 1.33× to 1.90× under a load of 34 to 36; copying GOMAXPROCS+1 files at once, one hash per core,"
	echo "brought it to this). The import is faster than the sync because it reads files instead of making HTTP"
	echo "requests; both verify the same way."
	echo "<!-- media:end -->"
} > "$out.md"
bench_write_section media "$out.md"
rm -f "$out" "$out.md"
echo "bench/media: figures written to docs/BENCHMARKS.md"
