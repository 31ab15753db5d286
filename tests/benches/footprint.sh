#!/usr/bin/env bash
# Footprint of the agent (issue 15): the stripped release binary's size and the idle RSS of
# `evident run` with the built-in default configuration (every host collector that needs no
# settings, a local directory store), split into the binary's pages, heap and the rest.
#
#   flock /var/tmp/evident-cargo.lock tests/benches/footprint.sh [MINUTES]
#
# MINUTES (default 10) is how long the daemon runs before its memory is read. Run it under the
# cargo lock so no other build or test shares the cores (figures are never asserted anywhere).
# Environment: CARGO_TARGET_DIR (the build), FOOTPRINT_SKIP_BUILD=1 (measure the binary already
# built there), FOOTPRINT_SAMPLES=N (also print VmRSS N times over the run, default 5).
# The built-in defaults serve /healthz on 127.0.0.1:9464: the port must be free.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes="${1:-10}"
samples="${FOOTPRINT_SAMPLES:-5}"
case "$minutes" in
'' | *[!0-9.]*)
    echo "usage: $0 [MINUTES]" >&2
    exit 2
    ;;
esac
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/evident"

if [ "${FOOTPRINT_SKIP_BUILD:-0}" != 1 ]; then
    start=$(date +%s)
    cargo build --release --locked -p evident
    echo "release build: $(($(date +%s) - start)) s wall (incremental unless the target dir was empty)"
fi
[ -x "$bin" ] || {
    echo "no release binary at $bin" >&2
    exit 1
}

bin=$(realpath "$bin")
size=$(stat -c %s "$bin")
stripped=$(mktemp)
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work" "$stripped"
}
trap cleanup EXIT
strip -o "$stripped" "$bin"
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1000000 }'; }
echo "binary: $bin"
echo "binary size: $size bytes ($(mb "$size")); stripped: $(stat -c %s "$stripped") bytes ($(mb "$(stat -c %s "$stripped")"))"
size -A "$bin" | awk '$1 ~ /^\./ && $2 > 200000 { printf "  section %-22s %9.2f MB\n", $1, $2 / 1000000 }'

if [ -e /etc/evident/evident.toml ]; then
    echo "/etc/evident/evident.toml exists: the built-in defaults would not be used" >&2
    exit 1
fi
if ss -ltnH 'sport = :9464' | grep -q .; then
    echo "127.0.0.1:9464 is in use: the built-in defaults serve /healthz there" >&2
    exit 1
fi

# The built-in defaults keep state in ./.evident and the store in ./evidence: run in $work.
# The default log level, as deployed: a debug line formatted after each idle release maps
# about 2 MB of code again (measured), so the releases are read from /metrics at the end.
(cd "$work" && exec "$bin" run >"$work/log" 2>&1) &
pid=$!
secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
step=$((secs / (samples > 0 ? samples : 1)))
[ "$step" -gt 0 ] || step=1
elapsed=0
while [ "$elapsed" -lt "$secs" ]; do
    n=$((secs - elapsed < step ? secs - elapsed : step))
    sleep "$n"
    elapsed=$((elapsed + n))
    kill -0 "$pid" 2>/dev/null || {
        echo "evident run exited early:" >&2
        cat "$work/log" >&2
        exit 1
    }
    echo "  after ${elapsed}s: $(grep -E '^VmRSS' "/proc/$pid/status" | tr -s ' \t' ' ')"
done

records=$(find "$work/evidence" -type f -name '*.json' 2>/dev/null | wc -l)
echo "after $minutes min of 'evident run' (built-in defaults; $records record files in the store; CPU $(awk '{ printf "%.2f s", ($14 + $15) / 100 }' "/proc/$pid/stat")):"
grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM|Threads)' "/proc/$pid/status" | sed 's/^/  /'
echo "smaps_rollup:"
grep -E '^(Rss|Pss|Shared_Clean|Private_Clean|Private_Dirty|Anonymous):' "/proc/$pid/smaps_rollup" | sed 's/^/  /'

# Where the resident pages are: per mapping group, resident kB, of which anonymous (written,
# private) and file-backed (clean pages of the file, reclaimable by the kernel at any time).
exe=$(readlink "/proc/$pid/exe")
echo "resident by mapping (kB: rss = file pages + anonymous):"
awk -v exe="$exe" '
    /^[0-9a-f]+-[0-9a-f]+ / {
        path = $6; perms = $2
        if (path == exe) group = "binary " perms
        else if (path ~ /\.so/) group = "shared libraries"
        else if (path == "[heap]") group = "[heap] (main arena)"
        else if (path == "[stack]") group = "[stack] (main thread)"
        else if (path == "") group = "anonymous (arenas, thread stacks, runtime)"
        else group = path
        next
    }
    $1 == "Rss:" { rss[group] += $2 }
    $1 == "Anonymous:" { anon[group] += $2 }
    END {
        for (g in rss) if (rss[g] > 0) printf "  %-44s rss %6d  file %6d  anonymous %6d\n", g, rss[g], rss[g] - anon[g], anon[g]
    }
' "/proc/$pid/smaps" | sort
awk -v exe="$exe" '
    /^[0-9a-f]+-[0-9a-f]+ / { mine = ($6 == exe); next }
    mine && $1 == "Rss:" { rss += $2 }
    mine && $1 == "Anonymous:" { anon += $2 }
    END { printf "binary total: %d kB resident (%d kB file pages, %d kB anonymous: relocations, .data, .bss)\n", rss, rss - anon, anon }
' "/proc/$pid/smaps"
# Last: answering /metrics runs code the idle daemon does not (everything above is read first).
echo "idle releases (from /metrics, read after the figures above):"
python3 - <<'PY' || echo "  /metrics not read"
import urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith("evident_idle_"):
        print("  " + line)
PY
echo "log (warnings and errors):"
grep -E ' (WARN|ERROR) ' "$work/log" | tail -n 5 | sed 's/^/  /' || true
