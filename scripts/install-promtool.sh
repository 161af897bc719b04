#!/bin/sh
# Install promtool (Debian's prometheus package) so the tests check the alert rules in
# deploy/prometheus/alerts.yml the way Prometheus will load them.
#
# Promises:
#   * Idempotent: does nothing (exit 0) when promtool is already installed.
#   * Otherwise needs root: a non-interactive `apt-get install -y prometheus` (its server
#     is not started: no init system runs in a test container, and the tests only run
#     promtool). Not root and missing -> a clear message and exit 1.
set -eu

if command -v promtool >/dev/null 2>&1; then
    echo "install-promtool: already installed ($(promtool --version 2>&1 | head -n 1))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-promtool: promtool is missing" >&2
    echo "install-promtool: run this script as root (e.g. sudo $0) to install it." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show prometheus >/dev/null 2>&1; then
    apt-get update
fi
echo "install-promtool: installing prometheus (for promtool)"
apt-get install -y --no-install-recommends prometheus
echo "install-promtool: done ($(promtool --version 2>&1 | head -n 1))"
