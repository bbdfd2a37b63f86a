#!/usr/bin/env bash
# Install headless Chromium for the browser tests (tests/test_review_browser.py), once.
# Idempotent: does nothing when a chromium binary is already on PATH (or $EAI_CHROMIUM points at
# one). Debian/Ubuntu only (apt-get); elsewhere install Chromium yourself and set EAI_CHROMIUM.
set -euo pipefail
if [ -n "${EAI_CHROMIUM:-}" ] && [ -x "${EAI_CHROMIUM}" ]; then
  echo "chromium: using \$EAI_CHROMIUM=${EAI_CHROMIUM}"; exit 0
fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "chromium: $(command -v "$name") ($("$name" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: chromium not found and apt-get is not available; install Chromium and set EAI_CHROMIUM" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing chromium needs root (or sudo)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
