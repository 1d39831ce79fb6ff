#!/bin/sh
# Install the Debian packages named on the command line that are missing (make deps, make test-deps).
# As root: apt-get install. Otherwise: print the exact command and fail. With --optional, a package
# that cannot be installed is reported and the tests that need it skip with the reason.
optional=0
if [ "$1" = "--optional" ]; then optional=1; shift; fi
CC=${CC:-gcc}

# A package counts as present when what the build needs from it is usable, whether dpkg installed it
# or a bundle (.deps/use-debs.sh on a GPU host without package access) put it on the compiler path.
present() {
  case "$1" in
    libmujoco-dev)   hdr='mujoco/mujoco.h' ;;
    libopenblas-dev) hdr='cblas.h' ;;
    libinih-dev)     hdr='ini.h' ;;
    zlib1g-dev)      hdr='zlib.h' ;;
    python3-torch)   /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; return $? ;;
    python3-numpy)   /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; return $? ;;
    *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; return $? ;;
  esac
  printf '#include <%s>\n' "$hdr" | $CC -E -x c - >/dev/null 2>&1
}

missing=""
for p in "$@"; do present "$p" || missing="$missing $p"; done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $missing >/tmp/mbpo-deps.log 2>&1; then
    exit 0
  fi
  echo "deps: '$cmd' failed (log: /tmp/mbpo-deps.log)" >&2
else
  echo "deps: missing$missing; install them with:  sudo $cmd" >&2
fi
if [ $optional = 1 ]; then
  echo "deps: continuing without$missing (tests that need them skip; the build falls back where it can)" >&2
  exit 0
fi
exit 1
