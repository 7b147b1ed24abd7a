#!/usr/bin/env bash
# Pack a built bundle into spinect-<version>-linux-x86_64.tar.gz with a per-user installer.
#
#   bash installers/linux/make_tarball.sh [BUNDLE_DIR] [OUT_DIR]
#   (defaults: build/dist/spinect and build/dist; installers/build.sh --tarball calls this)
#
# The tarball holds spinect-<version>/ with: spinect/ (the PyInstaller one-folder bundle),
# install.sh (per-user: ~/.local/opt/spinect, ~/.local/share/applications, an icon, ~/.local/bin
# links; --uninstall), spinect.desktop (template), spinect.png and README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUNDLE=$(cd "${1:-build/dist/spinect}" && pwd)
OUT=${2:-build/dist}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
[ -x "$BUNDLE/spinect" ] || { echo "make_tarball.sh: no bundle at $BUNDLE" >&2; exit 1; }
VERSION=$("$BUNDLE/spinect" --version | awk '{print $NF}')
ARCH=$(uname -m)
NAME=spinect-$VERSION-linux-$ARCH
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$NAME"
cp -a "$BUNDLE" "$STAGE/$NAME/spinect"
cp installers/linux/install.sh installers/linux/spinect.desktop "$STAGE/$NAME/"
ICON=assets/icons/spinect.png
[ -f "$ICON" ] || ICON=installers/icons/spinect.png
cp "$ICON" "$STAGE/$NAME/spinect.png"
cp installers/README.md "$STAGE/$NAME/README.md"
chmod +x "$STAGE/$NAME/install.sh"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "make_tarball.sh: $OUT/$NAME.tar.gz ($(du -m "$OUT/$NAME.tar.gz" | cut -f1) MB)"
