#!/usr/bin/env bash
# S3 drain rate of the agent beside rclone's, on the same s3s-fs server and the same files.
# Prints figures, asserts nothing (a missing tool is an error, exit 1).
#
# 1. Backlog: `evident run --once` BENCH_BACKLOG times (default 12) with 100 collectors (the
#    default host collectors, filled up with `exec` ones) while the S3 server refuses the
#    agent's credentials (403, not retried): every record stays in the spool. The state
#    directory is then kept aside, so every drain below starts from the same backlog.
# 2. BENCH_RUNS rounds (default 5), each of three timed runs, alternating which goes first
#    (odd rounds the agent, even rounds rclone), each into a fresh bucket:
#    - drain: one `evident run --once` with the right credentials and one collector, from a
#      fresh copy of the backlog's state; its wall time (process start, one collection,
#      shipping the whole backlog) gives the rate;
#    - rclone: `rclone copy --transfers 16` of the store the first drain wrote (the files
#      s3s-fs keeps for the bucket), as it copies by default, and with --s3-no-head
#      --s3-no-check-bucket (one PUT per object, as the agent does).
#    Then the median of each; "at least as fast" is a claim about the medians.
# 3. Requests (BENCH_COUNT=1, the default): one more drain and copy, untimed, against a
#    second s3s-fs that logs every request, counted by operation.
#
# Run (take figures while holding the cargo lock, so no build runs beside it):
#   cargo build -p evident-tests --bins   (or cargo build --release -p evident)
#   flock /var/tmp/evident-cargo.lock tests/tooling/s3_drain_bench.sh
# EVIDENT: the agent binary (default $CARGO_TARGET_DIR/release/evident when it exists, else
# .../debug/evident-under-test); EVIDENT_TOOLS: where setup.sh built s3s-fs;
# BENCH_CONCURRENCY: the S3 sink's `concurrency` and rclone's --transfers (16); BENCH_LOG:
# EVIDENT_LOG of the drains (default warn,evident=debug: one line per batch, summed below);
# BENCH_WRAP: a command to run the drains under (`strace -f -c -o FILE`, `/usr/bin/time`).
set -euo pipefail

here="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${EVIDENT:-}" ]; then
  if [ -x "$target/release/evident" ]; then EVIDENT="$target/release/evident"; else EVIDENT="$target/debug/evident-under-test"; fi
fi
tools="${EVIDENT_TOOLS:-/var/tmp/evident-tools}"
backlog_runs="${BENCH_BACKLOG:-12}"
rounds="${BENCH_RUNS:-5}"
conc="${BENCH_CONCURRENCY:-16}"
for t in "$EVIDENT" "$tools/bin/s3s-fs"; do
  [ -x "$t" ] || { echo "missing: $t (cargo build -p evident-tests --bins; tests/tooling/setup.sh)"; exit 1; }
done
command -v rclone > /dev/null || { echo "missing: rclone (tests/tooling/setup.sh installs it)"; exit 1; }

work="$(mktemp -d /var/tmp/s3-drain-bench.XXXXXX)"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_server ROOT PORT LOG [RUST_LOG]: an s3s-fs on 127.0.0.1:PORT; sets $started.
start_server() {
  mkdir -p "$1"
  RUST_LOG="${4:-}" "$tools/bin/s3s-fs" --host 127.0.0.1 --port "$2" --access-key bench \
    --secret-key bench-secret "$1" > "$3" 2>&1 &
  started=$!
  servers+=("$started")
  for _ in $(seq 100); do
    (exec 3<> "/dev/tcp/127.0.0.1/$2") 2> /dev/null && return 0
    sleep 0.1
  done
  echo "s3s-fs did not start: $(tail -3 "$3")"
  exit 1
}

port="$(free_port)"
start_server "$work/s3" "$port" "$work/s3s-fs.log"
server=$started

# CPU seconds (user + system) the S3 server has used so far.
tck="$(getconf CLK_TCK)"
server_cpu() { awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$server/stat"; }

# sink BUCKET PORT: the S3 sink's configuration.
sink() {
  printf '[[sinks]]\ntype = "s3"\nbucket = "%s"\nprefix = "prod"\nendpoint = "http://127.0.0.1:%s"\nforce_path_style = true\nconcurrency = %s\n' \
    "$1" "$2" "$conc"
}
mkdir -p "$work/agent" "$work/s3/backlog"
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
  sink backlog "$port"
} > "$work/agent/backlog.toml"

# A CA bundle of the environment is for TLS; the server here is plain HTTP on 127.0.0.1.
env_common=(AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=bench)
cd "$work/agent"
for _ in $(seq "$backlog_runs"); do
  env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=wrong-secret "$EVIDENT" run --once --config backlog.toml \
    > /dev/null 2>> "$work/backlog.log" || true
done
backlog="$(find .evident/spool -maxdepth 1 -name '*.dsse.json' | wc -l)"
echo "backlog: $backlog records in the spool ($(du -sk .evident/spool | cut -f1) KiB), $backlog_runs runs of 100 collectors, S3 refusing the credentials"
cp -a .evident "$work/backlog-state"

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
cpu_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(server_cpu)"; }

# The directory of the server the runs go to (the counting server has its own).
root="$work/s3"
# drain BUCKET PORT: one `run --once` from a fresh copy of the backlog into BUCKET; prints
# its line and appends its wall time to $work/agent.times.
drain() {
  local bucket="$1" p="$2" cpu0 start end out shipped files left t
  rm -rf .evident && cp -a "$work/backlog-state" .evident
  mkdir -p "$root/$bucket"
  { printf '[[collectors]]\nname = "system.uptime"\n\n'; sink "$bucket" "$p"; } > drain.toml
  cpu0="$(server_cpu)"
  start=$(now)
  # shellcheck disable=SC2086 # BENCH_WRAP is a command line
  out="$(env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret EVIDENT_LOG="${BENCH_LOG:-warn,evident=debug}" \
    ${BENCH_WRAP:-} "$EVIDENT" run --once --config drain.toml 2>&1)"
  end=$(now)
  echo "$out" | grep -qE '^wrote' || { echo "drain run failed: $out"; exit 1; }
  shipped="$(echo "$out" | sed -n 's/.*shipped \([0-9]*\) to.*/\1/p')"
  left="$(find .evident/spool -maxdepth 1 -name '*.dsse.json' | wc -l)"
  files="$(find "$root/$bucket/prod" -type f ! -name '.*' | wc -l)"
  t="$(elapsed "$start" "$end")"
  echo "$t" >> "$work/agent.times"
  # Where the drain's time went, from the agent's debug lines (one per batch).
  echo "$out" | python3 -c '
import re, sys
t, shipped, files, left, cpu = sys.argv[1:]
tot, n = {}, 0
for line in sys.stdin:
    if "shipped a batch" not in line and "S3: stored a batch" not in line:
        continue
    for k, v in re.findall(r"(\w+_ms)=(\d+)", line):
        tot[k] = tot.get(k, 0) + int(v)
    n += "shipped a batch" in line
print(f"  agent:  {float(t):.3f} s, {int(shipped)/float(t):5.0f} records/s ({shipped} records, {files} objects, {left} left in the spool; s3s-fs CPU {cpu} s; {n} batches: " + ", ".join(f"{k} {v}" for k, v in tot.items()) + ")")
' "$t" "$shipped" "$files" "$left" "$(cpu_since "$cpu0")"
}

export RCLONE_CONFIG_S3S_TYPE=s3 RCLONE_CONFIG_S3S_PROVIDER=Other \
  RCLONE_CONFIG_S3S_ACCESS_KEY_ID=bench RCLONE_CONFIG_S3S_SECRET_ACCESS_KEY=bench-secret \
  RCLONE_CONFIG_S3S_REGION=us-east-1 RCLONE_CONFIG_S3S_FORCE_PATH_STYLE=true
# copy VARIANT BUCKET PORT: rclone copy of the first drain's store into BUCKET, as it copies
# by default (it HEADs each object after its PUT) or `no-head` (one PUT per object).
copy() {
  local variant="$1" bucket="$2" p="$3" flags=() cpu0 start end copied t
  if [ "$variant" = no-head ]; then flags=(--s3-no-head --s3-no-check-bucket); fi
  mkdir -p "$root/$bucket"
  cpu0="$(server_cpu)"
  start=$(now)
  env -u AWS_CA_BUNDLE RCLONE_CONFIG_S3S_ENDPOINT="http://127.0.0.1:$p" \
    rclone copy --transfers "$conc" "${flags[@]}" --config /dev/null "$store" "s3s:$bucket/prod" \
    2> "$work/rclone.log" || { echo "rclone failed: $(tail -5 "$work/rclone.log")"; exit 1; }
  end=$(now)
  copied="$(find "$root/$bucket/prod" -type f ! -name '.*' | wc -l)"
  t="$(elapsed "$start" "$end")"
  echo "$t" >> "$work/rclone-$variant.times"
  printf '  rclone %-8s %.3f s, %5.0f objects/s (%s of %s objects; s3s-fs CPU %s s)\n' \
    "$variant:" "$t" "$(python3 -c "print($copied / $t)")" "$copied" "$files" "$(cpu_since "$cpu0")"
}

store="$work/s3/agent-1/prod"
echo "$rounds rounds (concurrency and --transfers $conc; $EVIDENT):"
for r in $(seq "$rounds"); do
  echo "round $r:"
  if [ $((r % 2)) -eq 1 ]; then
    drain "agent-$r" "$port"
    files="$(find "$store" -type f ! -name '.*' | wc -l)"
    copy default "rclone-$r" "$port"
    copy no-head "rclone-nohead-$r" "$port"
  else
    copy no-head "rclone-nohead-$r" "$port"
    copy default "rclone-$r" "$port"
    drain "agent-$r" "$port"
  fi
done
python3 - "$work" "$backlog" << 'EOF'
import statistics, sys
work, backlog = sys.argv[1], int(sys.argv[2])
def times(name):
    return [float(l) for l in open(f"{work}/{name}.times")]
agent, default, nohead = times("agent"), times("rclone-default"), times("rclone-no-head")
m = {k: statistics.median(v) for k, v in (("agent", agent), ("default", default), ("no-head", nohead))}
fmt = lambda v: ", ".join(f"{x:.3f}" for x in v)
print(f"median of {len(agent)}: agent {m['agent']:.3f} s ({fmt(agent)}), rclone default {m['default']:.3f} s ({fmt(default)}), rclone --s3-no-head {m['no-head']:.3f} s ({fmt(nohead)})")
verdict = "at least as fast as" if m["agent"] <= min(m["default"], m["no-head"]) else "SLOWER than"
print(f"the agent's median drain is {verdict} rclone's fastest median ({m['agent'] / min(m['default'], m['no-head']):.2f}x its time)")
EOF

# Requests per record: the same drain and copy against a second server that logs each request.
if [ "${BENCH_COUNT:-1}" = 1 ]; then
  cport="$(free_port)"
  start_server "$work/s3c" "$cport" "$work/s3c.log" "s3s::ops=debug"
  count() { grep -ao 'resolved route, op: [A-Za-z]*' "$work/s3c.log" | sed 's/.*op: //' | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}'; }
  saved_server=$server
  server=$started
  root="$work/s3c"
  BENCH_LOG=warn drain counted "$cport" > /dev/null
  echo "requests of a drain of $backlog records: $(count) (all: $(grep -ac 'resolved route' "$work/s3c.log"))"
  : > "$work/s3c.log"
  copy no-head rclone-counted "$cport" > /dev/null
  echo "requests of rclone --s3-no-head: $(count) (all: $(grep -ac 'resolved route' "$work/s3c.log"))"
  : > "$work/s3c.log"
  copy default rclone-counted-default "$cport" > /dev/null
  echo "requests of rclone default: $(count) (all: $(grep -ac 'resolved route' "$work/s3c.log"))"
  server=$saved_server
  root="$work/s3"
fi

# BENCH_KILLS=N: then N times, kill -9 the agent at a random moment of draining a backlog
# (topped up to >= 300 records while the server refuses the credentials) and verify the store
# after each kill: the parallel record PUTs of a batch, and the next batch's PUTs while the
# head of the one before is written, leave records past the newest head, which verify must
# note as an interrupted shipment, never call unsound.
kills="${BENCH_KILLS:-0}"
if [ "$kills" -gt 0 ]; then
  sound=0; gaps=0; unsound=0
  rm -rf .evident && cp -a "$work/backlog-state" .evident
  mkdir -p "$work/s3/kills"
  { printf '[[collectors]]\nname = "system.uptime"\n\n'; sink kills "$port"; } > drain.toml
  verify_store() {
    env "${env_common[@]}" AWS_SECRET_ACCESS_KEY=bench-secret "$EVIDENT" verify s3://kills/prod \
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
