# shellcheck shell=bash
# Lockdown's test setup, sourced by scripts/test: builds a real Debian 12 root
# with debootstrap once and caches it outside the repository (in
# $bulwark_test_cache, under the user's cache directory, never the machine's
# /var), then exports BULWARK_TEST_DEBIAN_ROOT for internal/lockdown, the
# lockdown CLI scripts and the real-package install tests (which upgrade its
# pam, openssl and ca-certificates to the security updates install.sh
# downloads). Tests copy the root before changing anything; the cache is
# never modified. The mirror is the one this machine's apt uses for bookworm
# (apt_mirror in apt-sources.sh).
#
# The root is rebuilt when its marker file is missing, so a build interrupted
# half-way is not mistaken for a finished one, and when the package list
# below changed since it was built; a lock keeps two suites started at once
# from building it over each other.
#
# linux-base is there because the SCAP Security Guide treats a system without
# it as having no kernel: its SSH, sysctl and kernel rules are then
# notapplicable. sudo, libpam-pwquality, auditd and rsyslog are the
# components the PAM, sudo, audit and log rules harden; pamtester lets the
# tests authenticate through the root's PAM stack. chrony and logrotate (which
# pulls in cron) are left out: their dpkg statoverrides name groups (_chrony,
# crontab) that `dpkg --root` resolves on the host, which the real-package
# install tests run; their rules are tested on small trees instead.

lockdown_root="${BULWARK_DEBIAN_ROOT:-$bulwark_test_cache/debian12-root}"
lockdown_marker="$lockdown_root/.bulwark-debootstrap-complete"
lockdown_include=openssh-server,nginx,procps,ca-certificates,openssl,linux-base,sudo,libpam-pwquality,auditd,rsyslog,pamtester

mkdir -p "$(dirname "$lockdown_root")"
exec {lockdown_lock}>"$(dirname "$lockdown_root")/.debian12-root.lock"
flock "$lockdown_lock"
if [ ! -e "$lockdown_marker" ] || ! grep -qx "include=$lockdown_include" "$lockdown_marker"; then
	lockdown_mirror=$(apt_mirror bookworm) || return 1
	apt_need debootstrap
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "scripts/test: building Debian 12 root for lockdown tests in $lockdown_root (debootstrap)"
	# Remove only a half-built root of ours, never a directory someone else
	# pointed BULWARK_DEBIAN_ROOT at.
	$sudo rm -f "$lockdown_marker"
	if [ -e "$lockdown_root" ] && [ -n "$(ls -A "$lockdown_root" 2>/dev/null)" ]; then
		if [ ! -e "$lockdown_root/.bulwark-debootstrap-started" ]; then
			echo "scripts/test: $lockdown_root exists and was not built by scripts/setup.d/lockdown.sh; remove it or set BULWARK_DEBIAN_ROOT elsewhere" >&2
			return 1
		fi
		$sudo rm -rf "$lockdown_root"
	fi
	$sudo mkdir -p "$lockdown_root"
	$sudo touch "$lockdown_root/.bulwark-debootstrap-started"
	start=$(date +%s)
	$sudo debootstrap --variant=minbase --include="$lockdown_include" \
		bookworm "$lockdown_root" "$lockdown_mirror" >"$(dirname "$lockdown_root")/debootstrap.log" 2>&1 || {
		echo "scripts/test: debootstrap failed; see $(dirname "$lockdown_root")/debootstrap.log" >&2
		return 1
	}
	# Host keys and machine-specific state do not matter to the tests; the
	# apt caches only take space.
	$sudo rm -rf "$lockdown_root"/var/cache/apt/archives/*.deb "$lockdown_root"/var/lib/apt/lists/*_Packages
	echo "scripts/test: debootstrap took $(( $(date +%s) - start ))s"
	printf '%s\ninclude=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$lockdown_include" | $sudo tee "$lockdown_marker" >/dev/null
	unset sudo start
fi
exec {lockdown_lock}>&-
export BULWARK_TEST_DEBIAN_ROOT="$lockdown_root"
unset lockdown_root lockdown_marker lockdown_mirror lockdown_lock lockdown_include
