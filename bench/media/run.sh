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
load0=$(cut -d' ' -f1-3 /proc/loadavg)
go run ./bench/media -updates "${UPDATES:-256}" -bytes "${BYTES:-1073741824}" -rounds "${ROUNDS:-3}" > "$out"
{
	echo "<!-- media:start -->"
	echo "## Offline media"
	echo
	echo "Command: \`bench/media/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine); load average $load0 at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "(1, 5, 15 min; a load near or above 2 means other builds shared the 2 cores and the disk)."
	echo
	echo "A vendor repository of ${UPDATES:-256} updates with $(( ${BYTES:-1073741824} >> 20 )) MiB of random payloads. \`media.Create\`"
	echo "verifies the repository from its root, copies every file hashing it against its signed hash, writes the"
	echo "manifest, and with \`CreateOptions.ISO\` (what \`media create --iso\` does) has xorriso write the image of"
	echo "the new directory before one flush (fsync of every file it wrote and of the image) covers both. The peer"
	echo "archives the same repository directory with \`tar -cf\` and makes an ISO of it with the same xorriso options,"
	echo "verifying nothing and flushing nothing (the third row adds \`sync\` of its two files). \`media import\` verifies"
	echo "the media and runs \`tuf.Mirror\` over file:// into an empty data directory; the peer is the same"
	echo "\`tuf.Mirror\` syncing the same repository over HTTP on loopback. Each measurement runs ${ROUNDS:-3} times,"
	echo "alternating with its peer; the best wall time and the best CPU time (user + system of the process and"
	echo "its children: xorriso, tar) of each are shown. Page caches are warm (the benchmark does not drop them)."
	echo
	cat "$out"
	echo
	echo "Media creation hashes every byte (SHA-256, checked against the signed hash), writes some 1,500 files"
	echo "(the repository's 1,024 bins among them) where tar writes one, and flushes what it wrote; the CPU column"
	echo "is the fairer comparison when the machine is loaded. Before this run's changes it flushed with syncfs"
	echo "(the whole filesystem, other processes' dirty data too) and wrote the image only after that flush."
	echo "<!-- media:end -->"
} > "$out.md"
bench_write_section media "$out.md"
rm -f "$out" "$out.md"
echo "bench/media: figures written to docs/BENCHMARKS.md"
