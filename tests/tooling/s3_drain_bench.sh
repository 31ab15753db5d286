#!/usr/bin/env bash
# S3 drain rate of the agent beside rclone's, on the same s3s-fs server and the same files.
# Prints figures, asserts nothing (a missing tool is an error, exit 1).
#
# 1. Backlog: `evident run --once` BENCH_RUNS times (default 12) with 100 collectors (the
#    default host collectors, filled up with `exec` ones) while the S3 server refuses the
#    agent's credentials (403, not retried): every record stays in the spool.
# 2. Drain: one `evident run --once` with the right credentials and one collector; its wall
#    time (process start, one collection, shipping the whole backlog) gives the rate.
# 3. rclone: `rclone copy --transfers 16` of the store the agent just wrote (the files s3s-fs
#    keeps for the bucket) to a fresh bucket of the same server, as it copies by default and
#    with --s3-no-head --s3-no-check-bucket (one PUT per object, as the agent does).
#
# Run (take figures while holding the cargo lock, so no build runs beside it):
#   cargo build -p evident-tests --bins   (or cargo build --release -p evident)
#   flock /var/tmp/evident-cargo.lock tests/tooling/s3_drain_bench.sh
# EVIDENT: the agent binary (default $CARGO_TARGET_DIR/release/evident when it exists, else
# .../debug/evident-under-test); EVIDENT_TOOLS: where setup.sh built s3s-fs;
# BENCH_CONCURRENCY: the S3 sink's `concurrency` and rclone's --transfers (16); BENCH_LOG:
# EVIDENT_LOG of the drain (default warn,evident=debug: one line per batch, summed below);
# BENCH_WRAP: a command to run the drain under (`strace -f -c -o FILE`, `/usr/bin/time`).
set -euo pipefail

here="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${EVIDENT:-}" ]; then
  if [ -x "$target/release/evident" ]; then EVIDENT="$target/release/evident"; else EVIDENT="$target/debug/evident-under-test"; fi
fi
tools="${EVIDENT_TOOLS:-/var/tmp/evident-tools}"
runs="${BENCH_RUNS:-12}"
conc="${BENCH_CONCURRENCY:-16}"
for t in "$EVIDENT" "$tools/bin/s3s-fs"; do
  [ -x "$t" ] || { echo "missing: $t (cargo build -p evident-tests --bins; tests/tooling/setup.sh)"; exit 1; }
done
command -v rclone > /dev/null || { echo "missing: rclone (tests/tooling/setup.sh installs it)"; exit 1; }

work="$(mktemp -d /var/tmp/s3-drain-bench.XXXXXX)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2> /dev/null || true; wait "$server" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$work/s3/evidence" "$work/s3/rclone" "$work/agent"
"$tools/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret \
  "$work/s3" > "$work/s3s-fs.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.1
done

# CPU seconds (user + system) the S3 server has used so far.
tck="$(getconf CLK_TCK)"
server_cpu() { awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$server/stat"; }

sink="[[sinks]]
type = \"s3\"
bucket = \"evidence\"
prefix = \"prod\"
endpoint = \"http://127.0.0.1:$port\"
force_path_style = true
concurrency = $conc
"
{
  n=0
  for kind in system.inventory system.uptime access.accounts access.sudoers access.ssh encryption.disks logging.journald logging.syslog logging.auditd logging.time_sync hardening.sysctl; do
    printf '[[collectors]]\nname = "%s"\n\n' "$kind"
    n=$((n + 1))
  done
  i=0
  while [ "$n" -lt 100 ]; do
    printf '[[collectors]]\nname = "exec"\nid = "c%d"\ncommand = ["echo", "{\\"i\\": %d, \\"note\\": \\"backlog record of the drain bench\\"}"]\ncontrols = ["ISO27001:2022/A.8.9"]\n\n' "$i" "$i"
    n=$((n + 1)); i=$((i + 1))
  done
  printf '%s' "$sink"
} > "$work/agent/backlog.toml"
printf '[[collectors]]\nname = "system.uptime"\n\n%s' "$sink" > "$work/agent/drain.toml"

# A CA bundle of the environment is for TLS; the server here is plain HTTP on 127.0.0.1.
env_common=(AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=bench)
cd "$work/agent"
for _ in $(seq "$runs"); do
  env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=wrong-secret "$EVIDENT" run --once --config backlog.toml \
    > /dev/null 2>> "$work/backlog.log" || true
done
backlog="$(find .evident/spool -maxdepth 1 -name '*.dsse.json' | wc -l)"
echo "backlog: $backlog records in the spool ($(du -sk .evident/spool | cut -f1) KiB), $runs runs of 100 collectors, S3 refusing the credentials"

cpu0="$(server_cpu)"
start=$(date +%s.%N)
out="$(env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret EVIDENT_LOG="${BENCH_LOG:-warn,evident=debug}" \
  ${BENCH_WRAP:-} "$EVIDENT" run --once --config drain.toml 2>&1)"
end=$(date +%s.%N)
cpu1="$(server_cpu)"
echo "$out" | grep -E '^wrote' || { echo "drain run failed: $out"; exit 1; }
shipped="$(echo "$out" | sed -n 's/.*shipped \([0-9]*\) to.*/\1/p')"
left="$(find .evident/spool -maxdepth 1 -name '*.dsse.json' | wc -l)"
store="$work/s3/evidence/prod"
files="$(find "$store" -type f ! -name '.*' | wc -l)"
python3 - "$start" "$end" "$shipped" "$files" "$left" "$conc" "$EVIDENT" << 'EOF'
import sys
start, end, shipped, files, left, conc, exe = sys.argv[1:]
t = float(end) - float(start)
print(f"evident run --once ({exe}): shipped {shipped} records ({files} objects in the store, {left} left in the spool) in {t:.2f} s: {int(shipped)/t:.0f} records/s, {int(files)/t:.0f} objects/s (concurrency {conc})")
EOF
echo "  s3s-fs CPU during the drain: $(python3 -c "print(f'{$cpu1 - $cpu0:.2f}')") s"

# Where the drain's time went, from the agent's debug lines (one per batch).
echo "$out" | python3 -c '
import re, sys
tot = {}
n = 0
for line in sys.stdin:
    if "shipped a batch" not in line and "S3: stored a batch" not in line:
        continue
    for k, v in re.findall(r"(\w+_ms)=(\d+)", line):
        tot[k] = tot.get(k, 0) + int(v)
    n += "shipped a batch" in line
print(f"  {n} batch(es); summed over them: " + ", ".join(f"{k} {v}" for k, v in tot.items()))
'

export RCLONE_CONFIG_S3S_TYPE=s3 RCLONE_CONFIG_S3S_PROVIDER=Other \
  RCLONE_CONFIG_S3S_ENDPOINT="http://127.0.0.1:$port" RCLONE_CONFIG_S3S_ACCESS_KEY_ID=bench \
  RCLONE_CONFIG_S3S_SECRET_ACCESS_KEY=bench-secret RCLONE_CONFIG_S3S_REGION=us-east-1 \
  RCLONE_CONFIG_S3S_FORCE_PATH_STYLE=true
# rclone as it copies by default (it HEADs each object after its PUT), then without the
# HEAD and the bucket check (its fewest requests: one PUT per object), each to a fresh bucket.
mkdir -p "$work/s3/rclone-nohead"
for variant in default no-head; do
  flags=()
  dest=rclone
  if [ "$variant" = no-head ]; then flags=(--s3-no-head --s3-no-check-bucket); dest=rclone-nohead; fi
  cpu0="$(server_cpu)"
  start=$(date +%s.%N)
  env -u AWS_CA_BUNDLE rclone copy --transfers "$conc" "${flags[@]}" --config /dev/null "$store" "s3s:$dest/prod" \
    2> "$work/rclone.log" || { echo "rclone failed: $(tail -5 "$work/rclone.log")"; exit 1; }
  end=$(date +%s.%N)
  copied="$(find "$work/s3/$dest/prod" -type f ! -name '.*' | wc -l)"
  python3 - "$start" "$end" "$copied" "$files" "$conc" "${flags[*]}" << 'EOF2'
import sys
start, end, copied, files, conc, flags = sys.argv[1:]
t = float(end) - float(start)
print(f"rclone copy --transfers {conc} {flags}: {copied} of {files} objects in {t:.2f} s: {int(copied)/t:.0f} objects/s")
EOF2
  echo "  s3s-fs CPU during the copy: $(python3 -c "print(f'{$(server_cpu) - $cpu0:.2f}')") s"
done

# BENCH_KILLS=N: then N times, kill -9 the agent at a random moment of draining a backlog
# (topped up to >= 300 records while the server refuses the credentials) and verify the store
# after each kill: the parallel record PUTs of a batch leave gaps past the newest head, which
# verify must note as an interrupted shipment, never call unsound.
kills="${BENCH_KILLS:-0}"
if [ "$kills" -gt 0 ]; then
  sound=0; gaps=0; unsound=0
  verify_store() {
    env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret "$EVIDENT" verify s3://evidence/prod \
      --endpoint "http://127.0.0.1:$port" 2>&1
  }
  for k in $(seq "$kills"); do
    while [ "$(find .evident/spool -maxdepth 1 -name '*.dsse.json' | wc -l)" -lt 300 ]; do
      env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=wrong-secret "$EVIDENT" run --once --config backlog.toml \
        > /dev/null 2>> "$work/backlog.log" || true
    done
    env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret "$EVIDENT" run --once --config drain.toml \
      > /dev/null 2>&1 &
    agent=$!
    sleep "0.$(printf '%03d' $((RANDOM % 600 + 50)))"
    kill -9 "$agent" 2> /dev/null || true
    wait "$agent" 2> /dev/null || true
    v="$(verify_store || true)"
    if echo "$v" | grep -q ': SOUND'; then sound=$((sound + 1)); else
      unsound=$((unsound + 1)); echo "kill $k: $(echo "$v" | grep PROBLEM | head -3)"; fi
    if echo "$v" | grep -q "an interrupted shipment (a batch's records are uploaded"; then gaps=$((gaps + 1)); fi
  done
  env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret "$EVIDENT" run --once --config drain.toml > /dev/null 2>&1
  final="$(verify_store | grep -E 'record\(s\).*(SOUND|PROBLEM)' | sed 's/.*: \([0-9]* record(s)\)/\1/')"
  echo "kills mid-drain: $kills, verify after each: $sound SOUND ($gaps with records missing past the newest head, noted as an interrupted shipment), $unsound unsound; after a clean run: $final"
fi
