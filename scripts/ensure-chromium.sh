#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is at /usr/bin/chromium for the browser tests
# (tests/browser). Playwright drives it through executable_path, so no browser download is
# needed (and none is possible here: only the package registries are reachable).
# Idempotent: when chromium is already installed this returns at once.
set -euo pipefail

CHROMIUM="${STAGELINK_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $CHROMIUM is missing and apt-get is not available;" \
        "install Chromium and set STAGELINK_CHROMIUM to its path" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "error: $CHROMIUM is missing; run as root: apt-get update && apt-get install -y chromium" >&2
        exit 1
    fi
fi

echo "installing Debian chromium for the browser tests (one time)..." >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when the first attempt cannot find the package
# (a fresh machine has none yet); an up-to-date machine skips the slow update.
if ! $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "error: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")" >&2
