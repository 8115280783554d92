#!/usr/bin/env bash
# Measures `bulwark media create` (directory and ISO) for 1 GiB of payloads
# against tar + xorriso of the same files, and `media import` against a sync
# of the same content; writes the "Offline media" section of
# docs/BENCHMARKS.md. Not part of the test run. Needs xorriso and about
# 12 GiB of free disk (the media made are kept until the run ends).
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
	echo "verifies the repository from its root, writes every file into the new directory (payloads hashed against"
	echo "their signed hashes as they are copied, metadata from the bytes it verified), each file flushed in the"
	echo "background as soon as it is written. With \`CreateOptions.ISO\` (what \`media create --iso\` does) xorriso"
	echo "makes the image at the same time, reading the files from the repository (grafted), and then every file's"
	echo "bytes in the image are compared with the verified directory; the image is flushed before it is renamed. The"
	echo "peer archives the same repository directory with \`tar -cf\` and makes an ISO of it with the same xorriso"
	echo "options, verifying nothing and flushing nothing (the third row adds \`sync\` of its two files). \`media import\`"
	echo "verifies the media and runs \`tuf.Mirror\` over file:// into an empty data directory; the peer is the same"
	echo "\`tuf.Mirror\` syncing the same repository over HTTP on loopback. Each measurement runs ${ROUNDS:-3} times,"
	echo "alternating with its peer; the best wall time and the best CPU time (user + system of the process and"
	echo "its children: xorriso, tar) of each are shown. Page caches are warm (the benchmark does not drop them)."
	echo
	cat "$out"
	echo
	echo "Media creation hashes every byte (SHA-256, checked against the signed hash), writes about 1,950 files"
	echo "(the repository's 1,024 bins among them) where tar writes one, compares the image with the directory, and"
	echo "flushes what it wrote; the CPU column is the fairer comparison when the machine is loaded. On ext4 without a"
	echo "journal (the filesystem of the machine these figures come from) creating a file costs more the more files"
	echo "were deleted nearby in the last minutes (the inode allocator skips recently deleted inodes), which the peer,"
	echo "writing two files, does not pay; so the media made are kept until the run ends (the peer's files are deleted"
	echo "at once, so that their unflushed pages are dropped, never written back during another measurement)."
	echo "<!-- media:end -->"
} > "$out.md"
bench_write_section media "$out.md"
rm -f "$out" "$out.md"
echo "bench/media: figures written to docs/BENCHMARKS.md"
