# Sourced by the build-c.sh scripts: the repository root (also the working
# directory), the cargo target directory (CARGO_TARGET_DIR honoured, made
# absolute) and the C compiler (CC honoured).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
cc=${CC:-cc}

# The names C programs link the project's one C library by, besides libdune (the
# original library's): crates/dune-clib builds libdune.a and libdune.so with every
# component's C API, and these are symbolic links to them, so that any combination of
# -l options gives a program one runtime.
clib_names=(sthread dune_sthread dune_gc dune_sandbox)

# clib DIR [--release]: builds the one C library and puts it in DIR under every name
# (DIR/libNAME.{a,so}). Prints nothing.
clib() {
	local dir=$1 profile=debug
	shift
	if [ "${1:-}" = --release ]; then
		profile=release
		cargo build -q --release -p dune-clib
	else
		cargo build -q -p dune-clib
	fi
	mkdir -p "$dir"
	local built=$target/$profile
	if [ "$(cd "$dir" && pwd -P)" != "$(cd "$built" && pwd -P)" ]; then
		cp -f "$built/libdune.a" "$built/libdune.so" "$dir/"
	fi
	local n
	for n in "${clib_names[@]}"; do
		ln -sfn libdune.a "$dir/lib$n.a"
		ln -sfn libdune.so "$dir/lib$n.so"
	done
}
