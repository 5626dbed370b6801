#!/usr/bin/env bash
# Where a running `lender-sandbox serve` spends its CPU on a read and on a write: py-spy
# samples the server while wrk loads it, and an in-process pyinstrument profile of 12 follows.
#
# usage, from the repository's root, after `pip install -e ".[dev]"`:  bench/profile_server.sh
# env: PY [.venv/bin/python]  DURATION [15] s of load per profile  CONC [16] wrk connections
#      RATE [100] py-spy samples/s  INPROCESS [1]: 0 skips the pyinstrument step
# Needs wrk (the Debian package; installed with apt when missing and run as root) and py-spy
# (the dev extra; it reads the server's memory: root, or ptrace allowed).
#
# Steps: start `serve` on a manual clock and a fresh SQLite file in a temp folder; make the
# bodies (bench/mk_bodies.py: a 12 of an order in review, 05s of new people); then for the
# read (POST /get-order-status, one body) and the write (POST /push-basic-info, a new body per
# request) in turn: wrk for DURATION seconds while py-spy records the server twice at once —
# a flame graph (SVG) and the raw folded stacks, from which the "top" tables are made (own
# samples and total samples per function). py-spy samples the thread holding the GIL (--gil):
# where Python computes; the top says how much of the time any thread held it (far below
# 100 %: the server mostly waits — fsync, locks, I/O). Prints the wrk summary (its rate is
# lowered by the sampling), the head of each top and where the files are:
# bench/results/profile-<time>/ (git-ignored).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-.venv/bin/python}; DURATION=${DURATION:-15}; CONC=${CONC:-16}; RATE=${RATE:-100}
INPROCESS=${INPROCESS:-1}
[ -x "$PY" ] || { echo "no Python at $PY: install the project first (README), or set PY" >&2; exit 2; }
BIN=$(dirname "$PY")
[ -x "$BIN/py-spy" ] || { echo "no py-spy in $BIN: pip install -e '.[dev]'" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "wrk is missing: apt-get install wrk (as root)" >&2; exit 2; }
  (apt-get update -qq && apt-get install -y -qq wrk) >&2
fi
OUT=bench/results/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
W=$(mktemp -d -t profile-server.XXXXXX)
PORT=$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf '[database]\nurl = "sqlite:///%s/sandbox.db"\n[clock]\nmode = "manual"\n' "$W" > "$W/profile.toml"
"$PY" -m sandbox serve --config "$W/profile.toml" --host 127.0.0.1 --port "$PORT" >"$OUT/serve.log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$W"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 120); do curl -fs "$URL/sandbox/health" >/dev/null 2>&1 && break; sleep 0.25; done
curl -fs "$URL/sandbox/health" >/dev/null || { echo "serve did not start:"; tail -5 "$OUT/serve.log"; exit 1; }
"$PY" bench/mk_bodies.py "$URL" "$W" $((DURATION * 2000 + 5000))
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

profile() {  # name path lua body [offset]
  local name=$1 path=$2 lua=$3 body=$4
  wrk -t1 -c"$CONC" -d3s -s "bench/wrk/$lua" "$URL$path" -- "$body" ${5:-} >/dev/null 2>&1 || true  # warm-up
  "$BIN/py-spy" record --pid "$SP" --rate "$RATE" --gil --duration "$DURATION" --format flamegraph \
    --output "$OUT/$name.svg" >"$OUT/$name.py-spy.log" 2>&1 &
  local f=$!
  "$BIN/py-spy" record --pid "$SP" --rate "$RATE" --gil --duration "$DURATION" --format raw \
    --output "$OUT/$name.folded" >>"$OUT/$name.py-spy.log" 2>&1 &
  local r=$!
  wrk -t1 -c"$CONC" -d"${DURATION}s" --latency -s "bench/wrk/$lua" "$URL$path" -- "$body" ${5:-} \
    > "$OUT/$name.wrk.txt" 2>&1 || true
  wait $f $r || { echo "py-spy failed (see $OUT/$name.py-spy.log):"; tail -3 "$OUT/$name.py-spy.log"; exit 1; }
  "$PY" bench/folded_top.py "$OUT/$name.folded" --rate "$RATE" --seconds "$DURATION" > "$OUT/$name.top.txt"
  echo; echo "== $name: POST $path, $CONC connections, ${DURATION}s"
  grep '^BENCH ' "$OUT/$name.wrk.txt" || tail -3 "$OUT/$name.wrk.txt"
  head -n 28 "$OUT/$name.top.txt"
}
profile read /get-order-status post.lua "$W/read.json"
profile write /push-basic-info cycle.lua "$W/writes.txt" 0
if [ "$INPROCESS" = 1 ]; then
  "$BIN/pyinstrument" -r html -o "$OUT/handle-12.html" bench/bench_handle.py 1000 > "$OUT/handle-12.txt"
  echo; echo "== in process: pipeline.handle of 12 (bench/bench_handle.py under pyinstrument)"
  cat "$OUT/handle-12.txt"
fi
echo
echo "files in $OUT/:"
echo "  read.svg, write.svg          flame graphs (open in a browser; click to zoom)"
echo "  read.top.txt, write.top.txt  own / total samples per function"
echo "  read.folded, write.folded    the raw stacks (flamegraph.pl, speedscope)"
echo "  *.wrk.txt, serve.log         wrk output, the server's log"
[ "$INPROCESS" = 1 ] && echo "  handle-12.html               pyinstrument call tree of 12 in process"
exit 0
