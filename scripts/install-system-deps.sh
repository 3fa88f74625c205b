#!/bin/sh
# Installs the Debian packages the test suite drives for real: Chromium with CJK and Burmese fonts, PostgreSQL,
# and a compose client that validates docker-compose.yml offline (no Docker engine is needed).
set -eu
need=""
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need="$need fonts-noto-cjk"
ls /usr/share/fonts/truetype/noto/NotoSansMyanmar-Regular.ttf >/dev/null 2>&1 || need="$need fonts-noto-core"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need="$need docker-compose"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: please install:$need (the tests that need them will report it)" >&2
    exit 0
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
