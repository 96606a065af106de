#!/bin/sh
# Long libFuzzer runs for docs/fuzzing.md: each named target for SECONDS,
# one after the other, from the committed seeds, at low priority. New
# inputs go to OUT/<target>/corpus, the log to OUT/<target>/log; the
# last lines of each log give the coverage (cov: edges, ft: features)
# and the corpus size.
#
#   test/fuzz/run_long.sh BUILD_DIR OUT_DIR SECONDS TARGET...
set -eu
build=$1 out=$2 secs=$3
shift 3
src=$(cd "$(dirname "$0")" && pwd)
for t in "$@"; do
  mkdir -p "$out/$t/corpus"
  (cd "$out/$t" &&
   nice -n 10 "$build/test/fuzz/$t" -max_total_time="$secs" -max_len=4096 \
     -print_final_stats=1 corpus "$src/corpus/$t" >log 2>&1) || true
  printf '%-18s %s  corpus: %s files\n' "$t" \
    "$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$out/$t/log" | tail -1 |
       grep -oE 'cov: [0-9]+ ft: [0-9]+')" \
    "$(ls "$out/$t/corpus" | wc -l)"
done
