#!/bin/sh
# Install the Debian packages that par's build, tests and demo use, if any is
# missing.  Needs root (or sudo) and Debian's archive; otherwise says what to do.
set -e
PKGS="lua5.4 liblua5.4-dev lua-busted lua-cjson lua-dkjson sqlite3 curl parallel procps openssh-client openssh-server make gcc man-db groff-base luarocks rsync"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "par: missing Debian packages:$missing" >&2
  echo "par: run as root: apt-get install -y$missing" >&2
  exit 1
fi
echo "par: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
