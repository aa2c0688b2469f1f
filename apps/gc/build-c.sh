#!/usr/bin/env bash
# Builds the collector's C library (release: the project's one C library,
# crates/dune-clib, as libdune_gc.a and libdune_gc.so among its names) and the
# benchmark programs of apps/gc/bench twice: against dune-gc's gc.h and library
# (target/release/gc/dune-NAME) and against Debian's bdwgc (-lgc, the peer:
# target/release/gc/bdwgc-NAME), and tests/c/features.c (target/release/gc/features).
# Installs libgc-dev with apt-get if missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"
if ! [ -f /usr/include/gc/gc.h ]; then
	echo "== installing libgc-dev (apt-get): Boehm GC, the benchmarks' peer"
	apt-get install -y -q --no-install-recommends libgc-dev >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends libgc-dev >/dev/null; }
fi
rel=$target/release
clib "$rel" --release
out=$rel/gc
mkdir -p "$out"
for b in gcbench linkedlist hashmap xml; do
	$cc -O2 -g -Wall -Werror -I "$repo/apps/gc/include" "$repo/apps/gc/bench/$b.c" -o "$out/dune-$b" "$rel/libdune_gc.a" -lpthread -ldl -lm
	$cc -O2 -g -Wall -Werror -DGC_THREADS -I /usr/include/gc "$repo/apps/gc/bench/$b.c" -o "$out/bdwgc-$b" -lgc -lm
done
# The C API's feature test, for the lane (finalizers, memory returned, threads).
$cc -O1 -g -Wall -Werror -I "$repo/apps/gc/include" "$repo/apps/gc/tests/c/features.c" -o "$out/features" "$rel/libdune_gc.a" -lpthread -ldl -lm
echo "apps/gc: $out/{dune,bdwgc}-{gcbench,linkedlist,hashmap,xml} and $out/features"
