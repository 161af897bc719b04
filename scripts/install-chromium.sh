#!/bin/sh
# Install Debian's chromium for the web panels' browser tests (tests/web drive it headless
# through Playwright; Playwright's own browser download is not used).
#
# Promises:
#   * Idempotent: does nothing (exit 0) when chromium is already installed.
#   * Otherwise needs root: a non-interactive `apt-get install -y chromium`, after
#     `apt-get update` when the package lists do not know chromium yet. Not root and
#     missing -> a clear message and exit 1.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: already installed ($(chromium --version 2>/dev/null | head -n 1))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: chromium is missing" >&2
    echo "install-chromium: run this script as root (e.g. sudo $0) to install it." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
    apt-get update
fi
echo "install-chromium: installing chromium"
apt-get install -y --no-install-recommends chromium
echo "install-chromium: done ($(chromium --version 2>/dev/null | head -n 1))"
