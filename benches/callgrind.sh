#!/usr/bin/env bash
# Exact instruction counts of the engine per call (callgrind), for before/after numbers
# that do not depend on what else runs on the machine:
#   benches/callgrind.sh [CALLS]      # prints instructions per call and the top functions
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${1:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN=$(cd "$ROOT" && cargo bench --bench engine_call --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*engine_call[^"]*\)".*/\1/p' | tail -1)
OUT="${OUT:-/tmp/veil-callgrind}"
mkdir -p "$OUT"
run() { ENGINE_CALLS="$1" valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1" "$BIN" --bench 2>&1 |
    awk '/Collected/ && $4 > m {m = $4} END {print m}'; }
base=$(run 100)
total=$(run $((N + 100)))
echo "engine: $(((total - base) / N)) instructions per call ($N calls, callgrind)"
callgrind_annotate "$OUT/cg.$((N + 100))" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,25p | cut -c1-160
