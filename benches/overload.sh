#!/usr/bin/env bash
# One veil process through an overloaded trial, then trials at a low rate: later trials
# must not inherit failures from the overload (docs/performance.md). Loopback only.
#   benches/overload.sh        # 10 000 calls at 6000 CPS, pause, 2 x 3000 calls at 300 CPS
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${OUT:-/tmp/veil-overload}"
rm -rf "$OUT" && mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --quiet --bin veil) || exit 1
cp "$HERE/bench-policy.yaml" "$OUT/"
sed '/^cdr:/,/^$/d' "$HERE/veil-bench.yaml" >"$OUT/veil.yaml"
"$CARGO_TARGET_DIR/release/veil" run --config "$OUT/veil.yaml" 2>"$OUT/veil.log" &
VEIL=$!
trap 'kill $VEIL 2>/dev/null; wait $VEIL 2>/dev/null' EXIT
sleep 1
trial() { # $1 = rate, $2 = calls
    (cd "$OUT" && exec sipp -sn uas -i 127.0.0.3 -p 15060 -mp 14700 -m "$2" -buff_size 4194304 \
        -trace_stat -stf uas.csv -fd 1 -nostdin >/dev/null 2>&1) &
    local uas=$!
    sleep 0.2
    (cd "$OUT" && timeout $(($2 / $1 + 30)) sipp -sn uac -i 127.0.0.2 -p 15060 -mp 14600 127.0.0.1:15060 \
        -s 0123456 -r "$1" -m "$2" -l $(($1 * 4 + 100)) -buff_size 4194304 -recv_timeout 5000 \
        -trace_stat -stf uac.csv -fd 1 -nostdin >/dev/null 2>&1)
    sleep 3
    kill "$uas" 2>/dev/null
    wait "$uas" 2>/dev/null
    local ok fail
    ok=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="SuccessfulCall(C)") c=i} END {print $c}' "$OUT/uac.csv")
    fail=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="FailedCall(C)") c=i} END {print $c}' "$OUT/uac.csv")
    echo "rate $1, $2 calls: ok=$ok failed=$fail; veil so far: $(grep -c 'bind failed' "$OUT/veil.log") bind failures, $(grep -c 'never acknowledged' "$OUT/veil.log") unacknowledged 2xx"
    rm -f "$OUT"/*.csv
}
trial 6000 10000
sleep 35 # Timer D and the 2xx retransmissions of the overload run out
trial 300 3000
trial 300 3000
