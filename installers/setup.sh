#!/usr/bin/env bash
# Set up SPINECT planner in a local virtual environment (.venv) on Linux or macOS.
#
#   bash installers/setup.sh          # create .venv, install spinect with all extras
#   bash installers/setup.sh --demo   # ... then run `spinect demo` on the embedded demo case
#
# CPU torch is installed first and pinned: an unpinned `torch` pulls a multi-GB CUDA build.
# For a CUDA workstation set SPINECT_TORCH="torch==2.13.0 --index-url <your CUDA wheel index>".
# On Debian/Ubuntu as root it also installs the X libraries the desktop app and its tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

run_demo=0
for arg in "$@"; do
  case "$arg" in
    --demo) run_demo=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is required"'

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  # Xvfb and the xcb libraries let Qt open a real window (with a 3D view) on a headless machine.
  # libgl1/libegl1 give VTK an OpenGL (Mesa) implementation for off-screen rendering.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends xvfb xauth libxcb-icccm4 libxcb-keysyms1 \
    libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 \
    libxcb-randr0 libxcb-shape0 libxcb-xinerama0 libgl1 libegl1 libglu1-mesa >/dev/null
  # dicom3tools' dciodvfy checks every DICOM object we write; Orthanc (with DICOMweb) is the
  # real PACS the round-trip tests start on loopback. Neither is needed to run the planner.
  apt-get install -y -qq --no-install-recommends dicom3tools orthanc orthanc-dicomweb >/dev/null
  # Debian starts Orthanc as a service on 4242/8042; the tests start their own on free ports.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now orthanc >/dev/null 2>&1 || true; fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null
# shellcheck disable=SC2086
$PIP install -q ${SPINECT_TORCH:-torch==2.13.0}
# [all] includes the dev extra: pytest and the gates' tools (ruff, mypy, import-linter) that
# .ci/gates runs.
$PIP install -q -e ".[all]"
for tool in ruff mypy lint-imports; do
  [ -x ".venv/bin/$tool" ] || { echo "setup.sh: .venv/bin/$tool missing after install" >&2; exit 1; }
done
echo "SPINECT planner installed in .venv ($(.venv/bin/spinect --version))"

if [ "$run_demo" = 1 ]; then
  .venv/bin/spinect demo -o spinect-demo --force
fi
