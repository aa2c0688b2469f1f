#!/usr/bin/env bash
# Builds crates/dune-clib/tests/c/combine.c once per combination of the project's C
# APIs (every pair and all four: dune, sthread, gc, sandbox), each linked with the
# matching -l options against the one C library's names:
#   <target>/debug/clib/combine-<apis>-static      -Wl,-Bstatic -l... (as listed)
#   <target>/debug/clib/combine-<apis>-static-rev  the -l options the other way round
#   <target>/debug/clib/combine-<apis>-shared      dynamically (rpath to the library)
# crates/dune-tests/tests/clib.rs runs them in the lane; scripts/test calls this.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"
lib=$target/debug
out=$lib/clib
clib "$out"
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$repo/include" -I "$repo/apps/sthread/include"
	-I "$repo/apps/gc/include" -I "$repo/apps/sandbox/include")
src=crates/dune-clib/tests/c/combine.c
declare -A lname=([dune]=dune [sthread]=sthread [gc]=dune_gc [sandbox]=dune_sandbox)
combos=("dune sthread" "dune gc" "dune sandbox" "sthread gc" "sthread sandbox" "gc sandbox" "dune sthread gc sandbox")
for combo in "${combos[@]}"; do
	read -ra apis <<<"$combo"
	defs=() ls=() rev=()
	for a in "${apis[@]}"; do
		defs+=("-DWITH_${a^^}")
		ls+=("-l${lname[$a]}")
		rev=("-l${lname[$a]}" "${rev[@]}")
	done
	name=combine-$(IFS=-; echo "${apis[*]}")
	"$cc" "${cflags[@]}" "${defs[@]}" "$src" -o "$out/$name-static" -L "$out" -Wl,-Bstatic "${ls[@]}" -Wl,-Bdynamic -lpthread -ldl -lm
	"$cc" "${cflags[@]}" "${defs[@]}" "$src" -o "$out/$name-static-rev" -L "$out" -Wl,-Bstatic "${rev[@]}" -Wl,-Bdynamic -lpthread -ldl -lm
	"$cc" "${cflags[@]}" "${defs[@]}" -DSHARED "$src" -o "$out/$name-shared" -L "$out" "${ls[@]}" -Wl,-rpath,"$out" -lpthread -ldl -lm
done
echo "combinations of the C APIs in $out"
