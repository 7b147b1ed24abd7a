#!/usr/bin/env bash
# Install SPINECT planner for the current user (no root): run from the unpacked tarball.
#
#   ./install.sh              # bundle -> ~/.local/opt/spinect, menu entry, icon, ~/.local/bin links
#   ./install.sh --uninstall  # remove all of that again (settings and logs stay)
#
# PREFIX (default ~/.local) moves everything: $PREFIX/opt/spinect, $PREFIX/share/applications,
# $PREFIX/share/icons/hicolor/256x256/apps, $PREFIX/bin. Logs: ~/.local/state/spinect/log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
DEST=$PREFIX/opt/spinect
APPS=${XDG_DATA_HOME:-$PREFIX/share}/applications
ICONS=${XDG_DATA_HOME:-$PREFIX/share}/icons/hicolor/256x256/apps
BIN=$PREFIX/bin

if [ "$(id -u)" = 0 ] && [ -z "${SPINECT_ALLOW_ROOT:-}" ]; then
  echo "install.sh: this is a per-user install; run it as the user who will use it" >&2
  echo "            (set SPINECT_ALLOW_ROOT=1 to install into root's home anyway)" >&2
  exit 1
fi

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 \
    && gtk-update-icon-cache -q -t "${ICONS%/256x256/apps}" 2>/dev/null || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$DEST"
  rm -f "$APPS/spinect.desktop" "$ICONS/spinect.png" "$BIN/spinect" "$BIN/spinect-app"
  refresh
  echo "SPINECT planner removed (settings in ~/.config/SPINECT, logs in ~/.local/state/spinect stay)"
  exit 0
fi

[ -x "$HERE/spinect/spinect-app" ] || { echo "install.sh: no spinect/ bundle beside me" >&2; exit 1; }
mkdir -p "$PREFIX/opt" "$APPS" "$ICONS" "$BIN"
# Replace an older version atomically enough: copy beside, then swap.
rm -rf "$DEST.new"
cp -a "$HERE/spinect" "$DEST.new"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
install -m 644 "$HERE/spinect.png" "$ICONS/spinect.png"
sed "s|@BUNDLE_DIR@|$DEST|g" "$HERE/spinect.desktop" > "$APPS/spinect.desktop"
chmod 644 "$APPS/spinect.desktop"
ln -sf "$DEST/spinect" "$BIN/spinect"
ln -sf "$DEST/spinect-app" "$BIN/spinect-app"
refresh
echo "SPINECT planner $("$DEST/spinect" --version | awk '{print $NF}') installed in $DEST"
echo "  menu entry: $APPS/spinect.desktop"
echo "  commands:   $BIN/spinect-app, $BIN/spinect (add $BIN to PATH if it is not)"
echo "  logs:       ${XDG_STATE_HOME:-$HOME/.local/state}/spinect/log"
