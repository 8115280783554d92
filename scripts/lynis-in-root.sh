#!/usr/bin/env bash
# lynis-in-root.sh ROOT: run this machine's Lynis inside the system root
# ROOT (a directory, such as a copy of the Debian root of the lockdown tests)
# and print its hardening index. Lynis's scripts are copied into ROOT and run
# chrooted there in private mount, PID, UTS, IPC and network namespaces:
# /proc is a fresh one of the private PID namespace, /run and /tmp are
# empty tmpfs, /dev is the machine's. The root's net.* sysctls (its
# sysctl.d) are set inside the private network namespace, as its boot would;
# kernel-wide values (kernel.*, fs.*, vm.*) stay the running kernel's, which
# this never changes. The report stays in ROOT/var/log/lynis-report.dat and
# the log in ROOT/var/log/lynis.log. Needs root and Lynis on this machine
# (scripts/setup.d/lynis.sh). Used by bench/lockdown/bench.sh and by
# internal/lockdown's TestDebianRootLynis.
set -euo pipefail
root=${1:?usage: lynis-in-root.sh ROOT}
[ -d "$root/etc" ] || { echo "lynis-in-root.sh: $root has no etc directory: give a system root" >&2; exit 2; }
command -v lynis >/dev/null || { echo "lynis-in-root.sh: lynis is not installed (scripts/setup.d/lynis.sh installs it)" >&2; exit 2; }
mkdir -p "$root/usr/share/lynis" "$root/etc/lynis"
cp -a /usr/share/lynis/. "$root/usr/share/lynis/"
cp -a /etc/lynis/. "$root/etc/lynis/"
cp "$(command -v lynis)" "$root/usr/sbin/lynis"
rm -f "$root/var/log/lynis-report.dat" "$root/var/log/lynis.log"
unshare --mount --propagation private --uts --ipc --net --pid --fork sh -c '
	set -e
	root="$1"
	mount -t proc proc "$root/proc"
	mount -t tmpfs tmp "$root/run"
	mount -t tmpfs tmp "$root/tmp"
	mount --bind /dev "$root/dev"
	cat "$root"/etc/sysctl.d/*.conf 2>/dev/null | sed -n "s/^[[:space:]]*\(net\.[^=[:space:]]*\)[[:space:]]*=[[:space:]]*\(.*\)\$/\1=\2/p" |
		while read -r kv; do sysctl -q -w "$kv" 2>/dev/null || true; done
	exec chroot "$root" /usr/sbin/lynis audit system --quick --no-colors --quiet --logfile /var/log/lynis.log --report-file /var/log/lynis-report.dat
' sh "$root" >/dev/null 2>&1 || true
index=$(sed -n 's/^hardening_index=//p' "$root/var/log/lynis-report.dat" 2>/dev/null || true)
[ -n "$index" ] || { echo "lynis-in-root.sh: Lynis wrote no hardening index in $root/var/log/lynis-report.dat" >&2; exit 1; }
echo "$index"
