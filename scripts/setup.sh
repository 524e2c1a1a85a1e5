#!/usr/bin/env bash
# Set up FusionHub in ./.venv: Python packages (pinned) and the detection model.
# With --test also the Debian packages and services the test suite uses.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ $want_test = 1 ]; then
  # Headless Chromium for the browser tests; GStreamer's RTSP server plays the test cameras.
  # baresip (with its ffmpeg H.264 codec) is the SIP video terminal of the terminal tests.
  pkgs="chromium python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base
        gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
        baresip-core baresip-ffmpeg"
  missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "== installing Debian packages: $missing"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing
  fi
  bash scripts/services.sh
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $PY"
  "$PY" -m venv .venv
fi
echo "== installing Python packages"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
echo "== fetching the detection model"
.venv/bin/fusionhub models fetch
