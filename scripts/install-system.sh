#!/usr/bin/env bash
# Install the system packages gis-service needs on Debian/Ubuntu: PostgreSQL with PostGIS,
# Python's venv module, and npm (the web map's JavaScript comes from the npm registry). Does nothing when they are already there; uses sudo when not root.
set -euo pipefail

have_postgis() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/pg_ctl" ] || continue
        local major; major=$(basename "$(dirname "$d")")
        [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] && return 0
    done
    return 1
}
have_venv() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
have_npm() { command -v npm >/dev/null 2>&1; }
# The web map's browser tests: Debian's Chromium and a CJK font for the map labels.
have_browser() { [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy"; }

if have_postgis && have_venv && have_npm && have_browser; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "install-system: need root or sudo to install PostgreSQL/PostGIS and python3-venv" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "install-system: not a Debian/Ubuntu system; install PostgreSQL + PostGIS 3 and python3-venv yourself" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system: apt-get update" >&2
"${SUDO[@]}" apt-get update -qq
# The distribution's default PostgreSQL major (15 on Debian 12, 16 on Ubuntu 24.04 …).
major=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1)
if [ -z "$major" ]; then
    echo "install-system: cannot find the postgresql package in apt" >&2
    exit 1
fi
pkgs=(postgresql "postgresql-$major" "postgresql-$major-postgis-3" python3-venv python3-pip ca-certificates make)
have_npm || pkgs+=(nodejs npm)
have_browser || pkgs+=(chromium fonts-wqy-microhei fontconfig)
echo "install-system: apt-get install ${pkgs[*]}" >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# The packaged default cluster is not used (gis-service runs its own); stop it to free 5432.
if command -v pg_lsclusters >/dev/null && [ "$(id -u)" -eq 0 ] && command -v pg_ctlcluster >/dev/null; then
    pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do
        pg_ctlcluster "$v" "$c" stop || true
    done
fi
have_postgis || { echo "install-system: PostGIS still missing after install" >&2; exit 1; }
