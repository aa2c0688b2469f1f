#!/usr/bin/env bash
# Builds the sthread C API as libsthread.a and libsthread.so (the names the original
# Wedge-on-Dune library had, so its programs link with -lsthread) next to
# include/sthread.h, and the C test program apps/sthread/tests/c/sthread-test.c
# into <target>/debug/sthread-test (static) and sthread-test-shared, and the attacks
# apps/sthread/tests/c/sthread-attack.c into <target>/debug/sthread-attack. The lane test
# (crates/dune-tests/tests/sthread.rs) runs them; scripts/test calls this.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"
cargo build -q -p dune-sthread
lib=$target/debug
out=$lib/sthread
mkdir -p "$out"
cp -f "$lib/libdune_sthread.a" "$out/libsthread.a"
cp -f "$lib/libdune_sthread.so" "$out/libsthread.so"
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$repo/apps/sthread/include")
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-test.c -o "$lib/sthread-test" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-test.c -o "$lib/sthread-test-shared" -L "$out" -lsthread -Wl,-rpath,"$out" -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-httpd.c -o "$lib/sthread-httpd" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sthread/tests/c/sthread-attack.c -o "$lib/sthread-attack" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
# The original Wedge programs, unchanged (apps/sthread/tests/wedge/README.md). bench.c
# includes the original dune.h too (include/libdune) and links -lsthread -ldune as the
# original Makefile does: libsthread carries the dune.h API as well, so every symbol
# comes from it and the process has one runtime (libdune.a adds nothing).
# The original Makefile's flags (no -O: bench.c's vmcall asm declares no memory clobber).
wedge=(-std=gnu11 -g -fomit-frame-pointer -w -I "$repo/apps/sthread/include")
"$cc" "${wedge[@]}" apps/sthread/tests/wedge/test.c -o "$lib/wedge-test" -L "$out" -Wl,-Bstatic -lsthread -Wl,-Bdynamic -lpthread -ldl -lm
"$cc" "${wedge[@]}" -I "$repo/include/libdune" apps/sthread/tests/wedge/bench.c -o "$lib/wedge-bench" \
	-L "$out" -L "$lib" -Wl,-Bstatic -lsthread -ldune -Wl,-Bdynamic -lpthread -ldl -lm
