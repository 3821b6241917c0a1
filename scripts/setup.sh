#!/usr/bin/env bash
# Idempotent setup for the testbed on Debian 12 (run as root for the apt step).
#
#   1. Debian packages: GNU Radio 3.10 and UHD (Python bindings built against NumPy 1.x),
#      PostgreSQL, and chromium (the dashboard's browser test).
#   2. A virtual environment made from /usr/bin/python3 that sees only gnuradio, pmt and uhd
#      from /usr/lib/python3/dist-packages (DESIGN.md section 11).
#   3. The Python dependencies, through constraints.txt (numpy<2, torch==2.13.0+cpu).
#
# Each step is skipped when its result is already there, so a warm run takes seconds.
# Environment: VENV (default .venv), EXTRAS (default all,dev), SKIP_APT=1 to skip step 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
EXTRAS="${EXTRAS:-all,dev}"
SYSTEM_PYTHON=/usr/bin/python3
APT_PACKAGES=(gnuradio uhd-host python3-uhd python3-venv python3-dev systemd postgresql chromium fonts-dejavu-core)
SYSTEM_MODULES=(gnuradio pmt uhd)

step() { printf '==> setup: %s\n' "$*"; }
fail() {
    printf 'setup FAILED at step "%s": %s\n' "$1" "$2" >&2
    exit 1
}

start=$(date +%s)

# --- 1. Debian packages -------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    step "Debian packages present (${APT_PACKAGES[*]})"
elif [ "${SKIP_APT:-0}" = "1" ]; then
    fail "apt" "missing ${missing[*]} and SKIP_APT=1; install them with: apt-get install ${missing[*]}"
else
    [ "$(id -u)" -eq 0 ] || fail "apt" "missing ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
    step "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt" "apt-get update failed; check /etc/apt/sources.list and the network"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt" "apt-get install ${missing[*]} failed; run it by hand to see why"
fi

# --- 2. virtual environment ---------------------------------------------------------------
[ -x "$SYSTEM_PYTHON" ] || fail "venv" "$SYSTEM_PYTHON not found; install python3 (Debian package python3)"
if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV from $SYSTEM_PYTHON"
    "$SYSTEM_PYTHON" -m venv "$VENV" || fail "venv" "python3 -m venv failed; apt-get install python3-venv"
fi
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for mod in "${SYSTEM_MODULES[@]}"; do
    src="/usr/lib/python3/dist-packages/$mod"
    [ -e "$src" ] || fail "venv" "$src not found; apt-get install gnuradio uhd-host python3-uhd"
    if [ "$(readlink "$site/$mod" 2>/dev/null)" != "$src" ]; then
        ln -sfn "$src" "$site/$mod"
        step "linked $mod into the venv"
    fi
done

# --- 3. Python dependencies ---------------------------------------------------------------
stamp="$VENV/.deps-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    step "Python dependencies up to date ($EXTRAS)"
else
    step "installing Python dependencies ($EXTRAS) through constraints.txt"
    log="$VENV/pip-install.log"
    "$VENV/bin/python" -m pip install -q --upgrade "pip>=24" >"$log" 2>&1 \
        || fail "pip" "could not upgrade pip (log: $log); check that PyPI is reachable"
    if ! "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[$EXTRAS]" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        fail "pip" "pip install -e .[$EXTRAS] failed (full log: $log); torch must come from the local torch-2.13.0+cpu wheel (pip find-links)"
    fi
    echo "$want" >"$stamp"
fi

"$VENV/bin/python" - <<'PY' || fail "check" "the venv cannot import its core modules; delete .venv and run again"
import numpy
from gnuradio import gr
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__} breaks Debian's GNU Radio"
PY
step "done in $(($(date +%s) - start)) s"
