#!/usr/bin/env bash
# Builds the sandbox's C API (the project's one C library, crates/dune-clib, as
# libdune_sandbox.a and libdune_sandbox.so among its names) and its C test
# program, apps/sandbox/tests/c/sandbox-capi.c, into <target>/debug/sandbox-capi
# (static) and <target>/debug/sandbox-capi-shared, on the host; the lane test
# (crates/dune-tests/tests/sandbox.rs) runs them. scripts/test calls this.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"
lib=$target/debug
clib "$lib"
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$repo/apps/sandbox/include")
"$cc" "${cflags[@]}" apps/sandbox/tests/c/sandbox-capi.c -o "$lib/sandbox-capi" "$lib/libdune_sandbox.a" -lpthread -ldl -lm
"$cc" "${cflags[@]}" apps/sandbox/tests/c/sandbox-capi.c -o "$lib/sandbox-capi-shared" -L "$lib" -ldune_sandbox -Wl,-rpath,"$lib" -lpthread -ldl -lm
