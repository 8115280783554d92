# shellcheck shell=bash
# Lynis as the second peer of the lockdown tests, sourced by scripts/test:
# internal/lockdown's TestDebianRootLynis runs the machine's Lynis (Debian
# 12's package, 3.0.8) inside a copy of the Debian root with sysadmin
# applied, through scripts/lynis-in-root.sh, and wants a hardening index of
# at least 80. bench/lockdown runs it the same way.
apt_need lynis
