#!/usr/bin/env bash
# Make the README screenshot of the HTML report with headless Chromium.
#
#   docs/screenshot.sh [DB] [OUT.png] [WIDTH,HEIGHT]
#
# DB defaults to $AUDIT_DB, else demo.duckdb (what `audit demo` leaves behind) when it
# exists, else audit.duckdb, in the working directory. OUT defaults to docs/report.png in the
# repository; the size to 1400,1500 (the top of the page: the summary, then the first
# timelines). SCALE=2 makes a sharper, twice as large image; TOP=N draws N fields (3).
# Needs the `chromium` package (Debian: apt-get install -y chromium).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

default_db=audit.duckdb
[ -f demo.duckdb ] && default_db=demo.duckdb
db=${1:-${AUDIT_DB:-$default_db}}
out=${2:-$repo/docs/report.png}
size=${3:-1400,1500}
scale=${SCALE:-1}
top=${TOP:-3}

audit="$repo/.venv/bin/audit"
[ -x "$audit" ] || audit=$(command -v audit) || { echo "error: audit not found (make install)" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || {
    echo "error: chromium not found; install it with: apt-get install -y chromium" >&2
    exit 2
}
[ -f "$db" ] || { echo "error: no store at $db; run \`audit demo\` or \`audit ingest\` first" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$audit" report --db "$db" --top "$top" --html "$work/report.html"

mkdir -p "$(dirname "$out")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
# --disable-background-networking and friends: without them Chromium phones home at start
# and, on a machine without network, logs refused connections.
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$work/profile" --virtual-time-budget=5000 \
    --force-device-scale-factor="$scale" --window-size="$size" \
    --screenshot="$out_abs" "file://$work/report.html" 2>"$work/chromium.log" || {
    echo "error: chromium failed:" >&2
    tail -n 5 "$work/chromium.log" >&2
    exit 2
}
[ -s "$out_abs" ] || { echo "error: chromium wrote no screenshot" >&2; tail -n 5 "$work/chromium.log" >&2; exit 2; }
echo "wrote $out"
