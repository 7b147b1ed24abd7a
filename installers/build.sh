#!/usr/bin/env bash
# Build the SPINECT planner one-folder bundle (PyInstaller) on Linux (or macOS) in a fresh venv.
#
#   bash installers/build.sh                 # venv + CPU torch + PyInstaller -> build/dist/spinect/
#   bash installers/build.sh --smoke         # ... then run the frozen app on a phantom (xvfb-run)
#   bash installers/build.sh --smoke-only    # smoke test an existing bundle, no rebuild
#   bash installers/build.sh --tarball       # ... and pack spinect-<version>-linux-x86_64.tar.gz
#
# Options / environment:
#   --cuda              CUDA torch instead of CPU: SPINECT_TORCH defaults to
#                       "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#   SPINECT_TORCH       the pip arguments that install torch (default "torch==2.13.0", CPU)
#   SPINECT_BUILD_DIR   work folder (default build/ in the checkout): venv/, work/, dist/, smoke/
#   SPINECT_BUILD_VENV  use this venv (created if missing) instead of $SPINECT_BUILD_DIR/venv
#   PYTHON              interpreter that creates the venv (default python3, >= 3.10)
#   --skip-install      reuse the venv as it is (no pip calls)
# The bundle is ~1-2 GB with CPU torch (several GB with CUDA). Heavy steps run under `nice`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

smoke=0; build=1; tarball=0; skip_install=0; cuda=0
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    --smoke-only) smoke=1; build=0 ;;
    --tarball) tarball=1 ;;
    --cuda) cuda=1 ;;
    --skip-install) skip_install=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

BUILD_DIR=${SPINECT_BUILD_DIR:-$ROOT/build}
VENV=${SPINECT_BUILD_VENV:-$BUILD_DIR/venv}
DIST=$BUILD_DIR/dist
BUNDLE=$DIST/spinect
if [ "$cuda" = 1 ]; then
  TORCH_SPEC=${SPINECT_TORCH:-"torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"}
else
  TORCH_SPEC=${SPINECT_TORCH:-"torch==2.13.0"}
fi
NICE="nice -n 19"
mkdir -p "$BUILD_DIR"
log() { echo "build.sh: $*"; }

if [ "$build" = 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    PYTHON=${PYTHON:-python3}
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is required"'
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
  if [ "$skip_install" = 0 ]; then
    log "installing $TORCH_SPEC first (an unpinned torch pulls a multi-GB CUDA build)"
    $NICE "$PY" -m pip install -q --upgrade pip
    # shellcheck disable=SC2086
    $NICE "$PY" -m pip install -q $TORCH_SPEC
    log "installing spinect[app] and PyInstaller"
    $NICE "$PY" -m pip install -q "$ROOT[app]" "pyinstaller>=6.10" "pyinstaller-hooks-contrib>=2024.8"
  fi
  log "PyInstaller $("$PY" -m PyInstaller --version), torch $("$PY" -c 'import torch; print(torch.__version__)')"
  start=$(date +%s)
  rm -rf "$BUNDLE"
  $NICE "$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$BUILD_DIR/work" installers/spinect.spec
  log "PyInstaller took $(( $(date +%s) - start )) s"
fi

[ -x "$BUNDLE/spinect-app" ] || { echo "build.sh: no bundle at $BUNDLE" >&2; exit 1; }
size_mb=$(du -sm "$BUNDLE" | cut -f1)
log "bundle $BUNDLE: ${size_mb} MB ($(find "$BUNDLE" -type f | wc -l) files)"

if [ "$smoke" = 1 ]; then
  SMOKE=$BUILD_DIR/smoke
  rm -rf "$SMOKE"; mkdir -p "$SMOKE"
  # The smoke run must not touch the user's settings or logs.
  export SPINECT_LOG_DIR=$SMOKE/logs XDG_CONFIG_HOME=$SMOKE/config
  # CLI start-up: the frozen console executable, twice (cold, then with a warm file cache).
  t0=$(date +%s.%N); "$BUNDLE/spinect" --version; t1=$(date +%s.%N)
  "$BUNDLE/spinect" --version >/dev/null; t2=$(date +%s.%N)
  cli_cold=$(python3 -c "print(round($t1 - $t0, 2))"); cli_warm=$(python3 -c "print(round($t2 - $t1, 2))")
  log "frozen CLI --version: ${cli_cold} s cold, ${cli_warm} s warm"
  log "bundle self-test (DICOM codecs, SimpleITK, torch, VTK overrides, assets)"
  selftest_rc=0
  "$BUNDLE/spinect" --bundle-selftest >"$SMOKE/selftest.log" 2>&1 || selftest_rc=$?
  grep -v '^{' "$SMOKE/selftest.log" | grep -E '^[a-z].*: (ok|FAILED)' || true
  tail -n 1 "$SMOKE/selftest.log" >"$SMOKE/selftest.json"
  log "making a phantom case with the frozen CLI"
  t0=$(date +%s.%N)
  $NICE "$BUNDLE/spinect" phantom "$SMOKE/case" --seed 0 --quiet --force
  t1=$(date +%s.%N); phantom_s=$(python3 -c "print(round($t1 - $t0, 1))")
  if [ -n "${DISPLAY:-}" ] || [ "$(uname)" = Darwin ]; then
    XRUN=()
  elif command -v xvfb-run >/dev/null 2>&1; then
    XRUN=(xvfb-run -a -s "-screen 0 1600x1000x24")
  else
    echo "build.sh: --smoke needs a display or xvfb-run (apt-get install xvfb xauth)" >&2; exit 1
  fi
  # App start-up: window up, then a missing input fails and --quit exits (1 is expected).
  t0=$(date +%s.%N)
  ${XRUN[@]+"${XRUN[@]}"} "$BUNDLE/spinect-app" "$SMOKE/missing.nii.gz" --quit \
    --settings "$SMOKE/settings.ini" >"$SMOKE/startup.log" 2>&1 || true
  t1=$(date +%s.%N); app_start=$(python3 -c "print(round($t1 - $t0, 1))")
  log "frozen app start-up to window and exit: ${app_start} s"
  log "frozen app in automation mode on the phantom (segmentation given, --plan, screenshot)"
  t0=$(date +%s.%N)
  set +e
  $NICE ${XRUN[@]+"${XRUN[@]}"} "$BUNDLE/spinect-app" "$SMOKE/case/ct.nii.gz" \
    --segmentation "$SMOKE/case/labels.nii.gz" --plan --screenshot "$SMOKE/out.png" --quit \
    --settings "$SMOKE/settings.ini" 2>&1 | tee "$SMOKE/app.log"
  app_rc=${PIPESTATUS[0]}
  set -e
  t1=$(date +%s.%N); app_s=$(python3 -c "print(round($t1 - $t0, 1))")
  log "frozen app exit code $app_rc after ${app_s} s"
  CHECK_PY=python3  # the checker needs numpy + Pillow: take the build venv's Python if there is one
  for candidate in "$VENV/bin/python" "$ROOT/.venv/bin/python"; do
    if [ -x "$candidate" ]; then CHECK_PY=$candidate; break; fi
  done
  check_rc=0
  "$CHECK_PY" installers/check_screenshot.py "$SMOKE/out.png" --json >"$SMOKE/check.json" || check_rc=$?
  "$CHECK_PY" installers/check_screenshot.py "$SMOKE/out.png" || true
  python3 - "$SMOKE/result.json" <<EOF
import json, platform, sys
check = json.load(open("$SMOKE/check.json"))
try:
    selftest = json.load(open("$SMOKE/selftest.json"))
except ValueError:
    selftest = {"ok": False, "checks": {}}
result = {"bundle_mb": $size_mb, "cli_version_cold_s": $cli_cold, "cli_version_warm_s": $cli_warm,
          "phantom_s": $phantom_s, "app_startup_s": $app_start, "app_smoke_s": $app_s,
          "app_exit_code": $app_rc, "selftest": selftest, "screenshot": check, "machine": platform.platform()}
json.dump(result, open(sys.argv[1], "w"), indent=2)
EOF
  log "smoke result in $SMOKE/result.json"
  if [ "$app_rc" != 0 ] || [ "$check_rc" != 0 ] || [ "$selftest_rc" != 0 ]; then
    echo "build.sh: SMOKE FAILED (app exit $app_rc, screenshot check $check_rc," \
      "self-test $selftest_rc)" >&2; exit 1
  fi
  log "SMOKE OK"
fi

if [ "$tarball" = 1 ]; then
  bash installers/linux/make_tarball.sh "$BUNDLE" "$DIST"
fi
