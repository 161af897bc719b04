#!/bin/sh
# Install Debian's FreeRADIUS 3.2 for the provisioner's real-peer tests (and for a
# single-host deployment), without leaving the stock service running.
#
# Promises:
#   * Idempotent: does nothing (exit 0) when freeradius, freeradius-utils (radclient)
#     and freeradius-postgresql are already installed.
#   * Otherwise needs root: apt-get update + a non-interactive install. Not root and
#     something missing -> a clear message and exit 1.
#   * A fresh install leaves no Debian freeradius service running or enabled, so
#     nothing occupies 1812/1813 (or 18120, the stock inner-tunnel site). The tests run
#     their own private server (tests/support/freeradius.py). An installation that was
#     already there is left exactly as it was.
set -eu

PACKAGES="freeradius freeradius-utils freeradius-postgresql"

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for pkg in $PACKAGES; do
    is_installed "$pkg" || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    if command -v freeradius >/dev/null 2>&1 && command -v radclient >/dev/null 2>&1; then
        echo "install-freeradius: already installed ($(freeradius -v 2>/dev/null | head -n 1))"
        exit 0
    fi
    echo "install-freeradius: packages installed but freeradius/radclient not on PATH;" >&2
    echo "install-freeradius: repair with: apt-get install --reinstall $PACKAGES" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-freeradius: missing:$missing" >&2
    echo "install-freeradius: run this script as root (e.g. sudo $0) to install them." >&2
    exit 1
fi

# Keep the package's maintainer scripts from starting the service at all: a
# policy-rc.d that exits 101 makes invoke-rc.d skip the start. Only add one (and remove
# it afterwards) if the system has none; Docker images usually ship their own.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT INT TERM

echo "install-freeradius: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    $PACKAGES

# Belt and braces: stop it if it did start, and disable it for the next boot, under
# systemd or sysvinit (containers often have no systemd; every step may fail there).
service freeradius stop >/dev/null 2>&1 || true
if [ -d /run/systemd/system ]; then
    systemctl disable --now freeradius >/dev/null 2>&1 || true
else
    systemctl disable freeradius >/dev/null 2>&1 || true   # offline: just the symlinks
fi
update-rc.d freeradius disable >/dev/null 2>&1 || true

echo "install-freeradius: done ($(freeradius -v 2>/dev/null | head -n 1)); service not running, not enabled"
