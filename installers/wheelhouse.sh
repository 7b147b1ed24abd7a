#!/usr/bin/env bash
# Download every wheel SPINECT planner needs, once, for an air-gapped machine (offline install).
#
#   bash installers/wheelhouse.sh [OUT_DIR]          # default build/wheelhouse-<platform>-cp<ver>
#
# Environment (defaults: this machine's platform and Python):
#   SPINECT_PLATFORM     pip platform tag: manylinux_2_28_x86_64 | win_amd64 | macosx_11_0_arm64 ...
#   SPINECT_PYTHON       target Python version, e.g. 3.11 (the air-gapped machine's Python)
#   SPINECT_EXTRAS       extras of spinect to include (default "app"; e.g. "app,train")
#   SPINECT_TORCH        torch requirement (default torch==2.13.0: the CPU build)
#   SPINECT_TORCH_INDEX  index for torch. Default: the PyTorch CPU index
#                        (https://download.pytorch.org/whl/cpu) for Linux and Windows, where
#                        PyPI's torch is the multi-GB CUDA build; PyPI for macOS. For a CUDA
#                        wheelhouse: https://download.pytorch.org/whl/cu128. "pip" = pip's own
#                        configured index (e.g. a local mirror that already has the CPU wheel).
#
# On the air-gapped machine (same platform and Python version), with the folder copied over:
#   python -m venv spinect-env && . spinect-env/bin/activate     # Windows: spinect-env\Scripts\activate
#   pip install --no-index --find-links wheelhouse torch==2.13.0
#   pip install --no-index --find-links wheelhouse "spinect[app]"
# torch goes first and pinned, so that pip never looks for (or falls back to) a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
PLATFORM=${SPINECT_PLATFORM:-$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')}
case "$PLATFORM" in linux_x86_64) PLATFORM=manylinux_2_28_x86_64 ;; linux_aarch64) PLATFORM=manylinux_2_28_aarch64 ;; esac
PYVER=${SPINECT_PYTHON:-$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}
EXTRAS=${SPINECT_EXTRAS:-app}
TORCH=${SPINECT_TORCH:-torch==2.13.0}
case "$PLATFORM" in
  macosx*) DEFAULT_TORCH_INDEX=pip ;;
  *) DEFAULT_TORCH_INDEX=https://download.pytorch.org/whl/cpu ;;
esac
TORCH_INDEX=${SPINECT_TORCH_INDEX:-$DEFAULT_TORCH_INDEX}
OUT=${1:-build/wheelhouse-$PLATFORM-cp${PYVER/./}}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)

# Manylinux wheels declare several compatible tags; accept the common ones for that platform.
PLATFORM_ARGS=(--platform "$PLATFORM")
case "$PLATFORM" in
  manylinux*x86_64)
    PLATFORM_ARGS+=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
                    --platform manylinux_2_28_x86_64 --platform linux_x86_64) ;;
  manylinux*aarch64)
    PLATFORM_ARGS+=(--platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64
                    --platform manylinux_2_28_aarch64) ;;
esac
TARGET=("${PLATFORM_ARGS[@]}" --python-version "$PYVER" --implementation cp
        --only-binary=:all:)

echo "wheelhouse.sh: $OUT for $PLATFORM, CPython $PYVER, spinect[$EXTRAS], $TORCH"
# 1. The project itself (pure Python, any platform).
"$PY" -m pip wheel -q --no-deps --wheel-dir "$OUT" "$ROOT"
WHEEL=$(ls -t "$OUT"/spinect-*.whl | head -n 1)
# 2. torch first, from the CPU (or the chosen) index, with its own dependencies.
if [ "$TORCH_INDEX" = pip ]; then
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --dest "$OUT" "${TARGET[@]}" $TORCH
else
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --dest "$OUT" "${TARGET[@]}" --index-url "$TORCH_INDEX" \
    --extra-index-url https://pypi.org/simple $TORCH
fi
# 3. Everything else; --find-links makes pip reuse the torch wheel just fetched (the resolver
#    sees torch==2.13.0 satisfied by it and never asks PyPI for a CUDA build).
# shellcheck disable=SC2086
"$PY" -m pip download -q --dest "$OUT" "${TARGET[@]}" --find-links "$OUT" \
  $TORCH "$WHEEL[$EXTRAS]"
# 4. pip, setuptools and wheel, so the offline venv can upgrade itself if needed.
"$PY" -m pip download -q --dest "$OUT" "${TARGET[@]}" pip setuptools wheel

count=$(ls "$OUT"/*.whl | wc -l)
echo "wheelhouse.sh: $count wheels, $(du -sm "$OUT" | cut -f1) MB in $OUT"
ls "$OUT" | grep -E '^torch-' || { echo "wheelhouse.sh: no torch wheel" >&2; exit 1; }
if ls "$OUT" | grep -q -E '^nvidia_'; then
  echo "wheelhouse.sh: note: CUDA libraries (nvidia_*) are in the wheelhouse (a CUDA torch)" >&2
fi
cat <<EOF
Offline install on the target machine (CPython $PYVER, $PLATFORM):
  python -m venv spinect-env && . spinect-env/bin/activate
  pip install --no-index --find-links "$(basename "$OUT")" $TORCH
  pip install --no-index --find-links "$(basename "$OUT")" "spinect[$EXTRAS]"
EOF
