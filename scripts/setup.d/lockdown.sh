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
# tests authenticate through the root's PAM stack.
#
# chrony and logrotate (which pulls in cron) are not in that root: their dpkg
# statoverrides name groups (_chrony, crontab) that `dpkg --root` resolves on
# the host, which the real-package install tests run against it. They get a
# second root of their own (BULWARK_TEST_TIMELOG_ROOT), which no test runs
# dpkg --root on, so their rules are tested against the real packages'
# configuration, with chronyd and logrotate themselves, and by OpenSCAP.

# lockdown_build ROOT INCLUDE builds a Debian 12 root with debootstrap
# --include=INCLUDE at ROOT unless a finished build of that list is there.
lockdown_build() {
	local root=$1 include=$2 marker="$1/.bulwark-debootstrap-complete" lock mirror sudo="" start log
	log="$(dirname "$root")/debootstrap-$(basename "$root").log"
	mkdir -p "$(dirname "$root")"
	exec {lock}>"$(dirname "$root")/.$(basename "$root").lock"
	flock "$lock"
	if [ ! -e "$marker" ] || ! grep -qx "include=$include" "$marker"; then
		mirror=$(apt_mirror bookworm) || { exec {lock}>&-; return 1; }
		apt_need debootstrap
		[ "$(id -u)" -ne 0 ] && sudo="sudo"
		echo "scripts/test: building Debian 12 root for lockdown tests in $root (debootstrap)"
		# Remove only a half-built root of ours, never a directory someone
		# else pointed the variable at.
		$sudo rm -f "$marker"
		if [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
			if [ ! -e "$root/.bulwark-debootstrap-started" ]; then
				echo "scripts/test: $root exists and was not built by scripts/setup.d/lockdown.sh; remove it or point the variable elsewhere" >&2
				exec {lock}>&-
				return 1
			fi
			$sudo rm -rf "$root"
		fi
		$sudo mkdir -p "$root"
		$sudo touch "$root/.bulwark-debootstrap-started"
		start=$(date +%s)
		$sudo debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$log" 2>&1 || {
			echo "scripts/test: debootstrap failed; see $log" >&2
			exec {lock}>&-
			return 1
		}
		# Host keys and machine-specific state do not matter to the tests;
		# the apt caches only take space.
		$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
		echo "scripts/test: debootstrap took $(( $(date +%s) - start ))s"
		printf '%s\ninclude=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$include" | $sudo tee "$marker" >/dev/null
	fi
	exec {lock}>&-
}

lockdown_root="${BULWARK_DEBIAN_ROOT:-$bulwark_test_cache/debian12-root}"
lockdown_build "$lockdown_root" openssh-server,nginx,procps,ca-certificates,openssl,linux-base,sudo,libpam-pwquality,auditd,rsyslog,pamtester || return 1
export BULWARK_TEST_DEBIAN_ROOT="$lockdown_root"
lockdown_timelog="${BULWARK_TIMELOG_ROOT:-$bulwark_test_cache/debian12-timelog-root}"
lockdown_build "$lockdown_timelog" chrony,logrotate,rsyslog,linux-base || return 1
export BULWARK_TEST_TIMELOG_ROOT="$lockdown_timelog"
unset lockdown_root lockdown_timelog
unset -f lockdown_build
