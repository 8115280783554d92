#!/usr/bin/env bash
# Measures `bulwark media create` (directory and ISO) for 1 GiB of payloads
# against tar + xorriso of the same files, and `media import` against a sync
# of the same content; rewrites the "Offline media" section of
# docs/BENCHMARKS.md. Not part of the test run. Runs as root: every
# measurement writes into a new ext4 filesystem on a loop image under the
# benchmark's own temporary directory (about 4 GiB of disk, removed at the
# end), so both sides start from the same filesystem state. Needs xorriso,
# mkfs.ext4, losetup. About 3 minutes on a quiet machine (ROUNDS=5).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
[ "$(id -u)" -eq 0 ] || { echo "bench/media: run as root (it mounts a loop image of its own)" >&2; exit 1; }
command -v xorriso >/dev/null || apt-get install -y -qq xorriso
work=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-bench-media-XXXXXX")
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || true; fi
	for d in $(losetup -j "$work/fs.img" -O NAME -n 2>/dev/null); do losetup -d "$d" || true; done
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bulwark" ./cmd/bulwark
out="$work/out.md"
rounds=${ROUNDS:-5}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
go run ./bench/media -work "$work" -bulwark "$work/bulwark" -updates "${UPDATES:-256}" -bytes "${BYTES:-1073741824}" -rounds "$rounds" > "$out"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "<!-- media:start -->"
	echo "## Offline media"
	echo
	echo "Command: \`bench/media/run.sh\` as root ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
	echo "Machine: $(bench_machine); load average $load0 at the start and $load1 at the end"
	echo "(1, 5, 15 min; a load near or above 2 means other builds shared the 2 cores and the disk: then the CPU"
	echo "column is the fairer comparison)."
	echo
	echo "A vendor repository of ${UPDATES:-256} updates with $(( ${BYTES:-1073741824} >> 20 )) MiB of random payloads, read from a warm page"
	echo "cache by both sides (every file read once and flushed before the first measurement, so no measurement shares"
	echo "the disk with the repository's own writeback). Bulwark is the \`bulwark\` binary: \`media create OUT --repo"
	echo "bench=DIR --all [--iso]\`"
	echo "verifies the repository from its root, writes every file into the new directory (payloads hashed against"
	echo "their signed hashes as they are copied, metadata from the bytes it verified) and flushes each file; with"
	echo "\`--iso\` xorriso makes the image at the same time from the repository's files (grafted), every file's bytes"
	echo "in the image are compared with the verified directory (from the moment xorriso has finished, overlapping the rest of"
	echo "the copying), and the image is flushed before it is renamed."
	echo "The peer archives the same repository directory with \`tar -cf\` and makes an ISO of it with the same"
	echo "xorriso options (\`-as mkisofs -r -J -joliet-long -iso-level 3\`), verifying nothing and flushing nothing;"
	echo "the third row adds \`sync\` of its two files. \`media import\` verifies the media and runs \`tuf.Mirror\` over"
	echo "file:// into an empty data directory; the peer is the same \`tuf.Mirror\` syncing the same repository over"
	echo "HTTP on loopback."
	echo
	echo "Fair by construction: every measurement (either side) writes into a new ext4 filesystem (\`mkfs.ext4"
	echo "-O ^has_journal\`, like this machine's root filesystem, no discard) made on the same loop image under the"
	echo "benchmark's own temporary directory (written in full once, attached with direct I/O so it writes straight to"
	echo "the image's blocks like a partition), mounted for that measurement only and unmounted after it (what is"
	echo "left unflushed is written back then, outside every measurement). So no side pays for the files the other"
	echo "wrote or deleted (ext4 without a journal scans past recently deleted inodes), nor for their dirty pages."
	echo "Each runs $rounds times; the peer and Bulwark alternate (peer first in odd rounds, Bulwark first in even"
	echo "ones); the median is shown, and every run below. CPU is user + system time of the processes run"
	echo "(bulwark, or tar, xorriso and sync). The host's caches and settings are not touched."
	echo
	cat "$out"
	if awk -v a="${load0%% *}" -v b="${load1%% *}" 'BEGIN { exit !(a >= 2 || b >= 2) }'; then
		echo
		echo "**The machine was loaded (load average $load0 → $load1 on 2 cores): the wall times above swing with the"
		echo "other work and do not decide the goal; the CPU ratio is the less load-sensitive figure. A rerun on a quiet"
		echo "machine decides it.**"
	fi
	echo "<!-- media:end -->"
} > "$out.md"
bench_write_section media "$out.md"
echo "bench/media: figures written to docs/BENCHMARKS.md"
