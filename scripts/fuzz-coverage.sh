#!/usr/bin/env bash
# Line coverage of a source file by a fuzz target's corpus: builds the target
# with clang's source-based coverage (-fprofile-instr-generate
# -fcoverage-mapping) in build/fuzz-cov, runs every input of the corpus
# once (-runs=0) and prints llvm-cov's report for the file.
#
#   scripts/fuzz-coverage.sh [TARGET [FILE [CORPUS...]]]
#   defaults: fuzz_apply, agent/apply.c, build/fuzz/corpus/TARGET and fuzz/corpus
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TARGET=${1:-fuzz_apply}
FILE=${2:-agent/apply.c}
shift $(($# > 2 ? 2 : $#))
corpora=("$@")
[ ${#corpora[@]} -gt 0 ] || corpora=("$BUILD/fuzz/corpus/$TARGET" fuzz/corpus)
OUT=$BUILD/fuzz-cov
mkdir -p "$OUT"

make --no-print-directory BUILD="$OUT" CLANG="${CLANG:-clang} -fprofile-instr-generate -fcoverage-mapping" \
	"$OUT/fuzz/$TARGET" >/dev/null
rm -f "$OUT/$TARGET".*.profraw
dirs=()
for d in "${corpora[@]}"; do [ -d "$d" ] && dirs+=("$d"); done
[ ${#dirs[@]} -gt 0 ] || { echo "fuzz-coverage: no corpus in ${corpora[*]}" >&2; exit 1; }
LLVM_PROFILE_FILE="$OUT/$TARGET.%p.profraw" "$OUT/fuzz/$TARGET" -runs=0 "${dirs[@]}" \
	>"$OUT/$TARGET.log" 2>&1
llvm-profdata merge -sparse "$OUT/$TARGET".*.profraw -o "$OUT/$TARGET.profdata"
echo "corpus: $(find "${dirs[@]}" -type f | wc -l) inputs from ${dirs[*]}"
llvm-cov report "$OUT/fuzz/$TARGET" -instr-profile="$OUT/$TARGET.profdata" "$FILE"
