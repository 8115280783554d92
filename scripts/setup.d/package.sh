# shellcheck shell=bash
# Packaging's test setup, sourced by scripts/test after lockdown.sh: nfpm
# (pinned) builds the Debian packages, lintian checks them, and
# dist/package_test.go installs them with dpkg into a copy of a Debian 12
# root that has systemd (for `systemd-analyze verify --root`). That root is
# the debootstrapped BULWARK_TEST_DEBIAN_ROOT plus Debian's systemd package,
# made once next to it; tests copy it and never change it.
apt_need lintian systemd fakeroot man-db
if ! { command -v nfpm >/dev/null && go version -m "$(command -v nfpm)" | grep -q "nfpm/v2[[:space:]]*v2.45.2"; }; then
	echo "scripts/test: installing nfpm v2.45.2"
	go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
fi

: "${BULWARK_TEST_DEBIAN_ROOT:?scripts/setup.d/package.sh needs the Debian root of scripts/setup.d/lockdown.sh}"
package_root="$(dirname "$BULWARK_TEST_DEBIAN_ROOT")/debian12-systemd-root"
package_marker="$package_root/.bulwark-systemd-complete"
exec {package_lock}>"$(dirname "$package_root")/.debian12-systemd-root.lock"
flock "$package_lock"
if [ ! -e "$package_marker" ] || [ "$BULWARK_TEST_DEBIAN_ROOT/.bulwark-debootstrap-complete" -nt "$package_marker" ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "scripts/test: adding systemd to a copy of $BULWARK_TEST_DEBIAN_ROOT in $package_root"
	$sudo rm -rf "$package_root.new"
	$sudo cp -a "$BULWARK_TEST_DEBIAN_ROOT" "$package_root.new"
	# The root's apt reads this machine's Debian sources, not a mirror
	# written into the repository.
	$sudo rm -f "$package_root.new/etc/apt/sources.list" "$package_root.new"/etc/apt/sources.list.d/*
	[ -e /etc/apt/sources.list ] && $sudo cp /etc/apt/sources.list "$package_root.new/etc/apt/sources.list"
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] && $sudo cp "$f" "$package_root.new/etc/apt/sources.list.d/"
	done
	{
		$sudo chroot "$package_root.new" apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive $sudo chroot "$package_root.new" apt-get install -y -qq --no-install-recommends systemd
	} >"$(dirname "$package_root")/systemd-root.log" 2>&1 || {
		echo "scripts/test: installing systemd into $package_root.new failed; see $(dirname "$package_root")/systemd-root.log" >&2
		return 1
	}
	$sudo rm -rf "$package_root.new"/var/lib/apt/lists/* "$package_root.new"/var/cache/apt/*.bin "$package_root.new"/var/cache/apt/archives/*.deb
	$sudo rm -rf "$package_root"
	$sudo mv "$package_root.new" "$package_root"
	date -u +%Y-%m-%dT%H:%M:%SZ | $sudo tee "$package_marker" >/dev/null
	unset sudo
fi
exec {package_lock}>&-
export BULWARK_TEST_SYSTEMD_ROOT="$package_root"
unset package_root package_marker package_lock
