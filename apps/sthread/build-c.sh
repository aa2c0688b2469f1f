#!/usr/bin/env bash
# Puts the project's one C library (crates/dune-clib, which carries the sthread C
# API of include/sthread.h) into <target>/debug/sthread as libdune.{a,so} and under
# its other names, libsthread.{a,so} among them (the original Wedge-on-Dune library's,
# so its programs link with -lsthread), and the C test program apps/sthread/tests/c/sthread-test.c
# into <target>/debug/sthread-test (static) and sthread-test-shared, and the attacks
# apps/sthread/tests/c/sthread-attack.c into <target>/debug/sthread-attack. The lane test
# (crates/dune-tests/tests/sthread.rs) runs them; scripts/test calls this.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"
lib=$target/debug
out=$lib/sthread
clib "$out"
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$repo/apps/sthread/include")
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-test.c -o "$lib/sthread-test" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-test.c -o "$lib/sthread-test-shared" -L "$out" -lsthread -Wl,-rpath,"$out" -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-httpd.c -o "$lib/sthread-httpd" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-attack.c -o "$lib/sthread-attack" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
# The original Wedge programs, unchanged (apps/sthread/tests/wedge/README.md). bench.c
# includes the original dune.h too (include/libdune) and links -lsthread -ldune as the
# original Makefile does: both names are the one library, so every symbol comes from
# the first and the process has one runtime (the second adds nothing).
# The original Makefile's flags (no -O: bench.c's vmcall asm declares no memory clobber).
wedge=(-std=gnu11 -g -fomit-frame-pointer -w -I "$repo/apps/sthread/include")
"$cc" "${wedge[@]}" apps/sthread/tests/wedge/test.c -o "$lib/wedge-test" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${wedge[@]}" -I "$repo/include/libdune" apps/sthread/tests/wedge/bench.c -o "$lib/wedge-bench" \
	-L "$out" -L "$lib" -Wl,-Bstatic -lsthread -ldune -Wl,-Bdynamic -lpthread -ldl -lm
