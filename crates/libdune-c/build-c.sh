#!/usr/bin/env bash
# Builds what the C API lane tests run, on the host (inside the VM lane the host's
# file system is read-only):
#   - libdune.a and libdune.so (crates/dune-clib: every C API, dune.h's from
#     crates/libdune-c) and the Rust examples (examples/rust);
#   - the C API tests, crates/libdune-c/tests/c/*.c, and the C examples, examples/c/*.c,
#     linked against libdune.a into <target>/debug/capi/<name>; misc.c also against
#     libdune.so, as capi/misc-shared;
#   - the library installed with scripts/install into <target>/debug/capi-prefix, and
#     examples/c/demand-paging.c built against that installation with
#     `pkg-config --cflags --libs libdune` (linked to its libdune.so) as
#     capi/pkgconfig-demand-paging.
# crates/dune-tests/tests/{capi,examples}.rs run them in the lane and refuse binaries
# older than their sources. scripts/test calls this before the lane runs.
#
#   crates/libdune-c/build-c.sh        (CARGO_TARGET_DIR and CC are honoured)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/c-env.sh"

lib=$target/debug
clib "$lib"
cargo build -q -p dune-examples
out=$lib/capi
mkdir -p "$out"
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$repo/include" -I "$repo/crates/libdune-c/tests/c")
libs=(-lpthread -ldl -lm)

for src in crates/libdune-c/tests/c/*.c examples/c/*.c; do
	name=$(basename "$src" .c)
	"$cc" "${cflags[@]}" "$src" -o "$out/$name" "$lib/libdune.a" "${libs[@]}"
done
# The shared library: the same program, linked dynamically (found through its rpath).
"$cc" "${cflags[@]}" crates/libdune-c/tests/c/misc.c -o "$out/misc-shared" \
	-L "$lib" -ldune -Wl,-rpath,"$lib" "${libs[@]}"
# As a user of the installed library would build: only what pkg-config says.
if ! command -v pkg-config >/dev/null; then
	# A fresh Debian machine may lack it (scripts/vm-run installs its packages alike).
	sudo=; [ "$(id -u)" = 0 ] || sudo="sudo -n"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get -q install -y pkgconf </dev/null >/dev/null ||
		{ echo "build-c.sh: pkg-config is missing and apt-get install pkgconf failed" >&2; exit 1; }
fi
prefix=$lib/capi-prefix
rm -rf "$prefix"
scripts/install --debug --prefix "$prefix" >/dev/null
pc() { PKG_CONFIG_PATH=$prefix/lib/pkgconfig PKG_CONFIG_LIBDIR= pkg-config "$@" libdune; }
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"$cc" -std=gnu11 -O1 -g -Wall -Wextra -Werror $(pc --cflags) examples/c/demand-paging.c \
	-o "$out/pkgconfig-demand-paging" $(pc --libs)
echo "C API programs in $out"
