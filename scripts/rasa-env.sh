#!/usr/bin/env bash
# Builds (once) the virtual environment of a real Rasa Open Source 3.6 server, outside the checkout, and prints
# its path. Rasa 3.6 declares Python <3.11 and pins pydantic 1, SQLAlchemy 1.4 and numpy 1.23, so it never shares
# the app's environment. The folder is keyed by the pinned versions and the Python version, so a change of pins
# builds a new one and an unchanged key is reused (about 7 minutes and 2.7 GB the first time).
#
#   scripts/rasa-env.sh          build if needed, print the venv path (exit 1 and the reason when it cannot)
#   scripts/rasa-env.sh --path   print the venv path only if it is already built (never builds)
#
# Folder: ${MIRAI_RASA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mirai}/rasa-<key>
set -euo pipefail

RASA_SPEC="rasa==3.6.21"
# Releases of Rasa's dependencies that have Python 3.11 wheels (see shared/recipes.md).
PINS='scipy==1.10.1
numpy==1.23.5
scikit-learn==1.1.3
dask==2022.10.2'
PYTHON="${MIRAI_RASA_PYTHON:-python3}"

py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(printf '%s\n%s\n%s\n' "$RASA_SPEC" "$PINS" "$py_version" | sha1sum | cut -c1-12)
home="${MIRAI_RASA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mirai}"
venv="$home/rasa-$key"
failed="$venv.failed"

if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi
if [ "${1:-}" = "--path" ]; then
    if [ -f "$failed" ]; then
        echo "the Rasa environment could not be built ($venv): $(tail -n 3 "$failed" | tr '\n' ' ')" >&2
    else
        echo "the Rasa environment is not built yet ($venv): run 'make rasa-env' or scripts/rasa-env.sh" >&2
    fi
    exit 1
fi

mkdir -p "$home"
exec 9>"$venv.lock"
flock 9  # another build of the same key (a parallel make or test run) finishes first
if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi

log="$venv.log"
fail() {
    { echo "$*"; tail -n 20 "$log" 2>/dev/null || true; } >"$failed"
    echo "rasa-env: $* (log: $log)" >&2
    exit 1
}

# matplotlib 3.5 (a Rasa dependency) builds from source against the system FreeType and Qhull.
need=""
dpkg -s libfreetype-dev >/dev/null 2>&1 || need="$need libfreetype-dev"
dpkg -s libqhull-dev >/dev/null 2>&1 || need="$need libqhull-dev"
dpkg -s pkg-config >/dev/null 2>&1 || need="$need pkg-config"
if [ -n "$need" ] && command -v dpkg >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "rasa-env: installing:$need" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $need >/dev/null || fail "apt-get install$need failed"
    else
        fail "please install:$need"
    fi
fi

echo "rasa-env: building $RASA_SPEC in $venv (once; about 7 minutes; log: $log)" >&2
rm -rf "$venv" "$failed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[libs]\nsystem_freetype = True\nsystem_qhull = True\n' >"$tmp/mplsetup.cfg"
printf '%s\n' "$PINS" >"$tmp/rasa-pins.txt"
{
    "$PYTHON" -m venv "$venv" &&
        "$venv/bin/pip" install --quiet --upgrade pip &&
        MPLSETUPCFG="$tmp/mplsetup.cfg" "$venv/bin/pip" install --ignore-requires-python \
            -c "$tmp/rasa-pins.txt" "$RASA_SPEC" "dask==2022.10.2" &&
        RASA_TELEMETRY_ENABLED=false "$venv/bin/rasa" --version
} >"$log" 2>&1 || { rm -rf "$venv"; fail "pip install $RASA_SPEC failed"; }
touch "$venv/.complete"
echo "rasa-env: ready in $venv" >&2
echo "$venv"
