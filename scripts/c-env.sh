# Sourced by the build-c.sh scripts: the repository root (also the working
# directory), the cargo target directory (CARGO_TARGET_DIR honoured, made
# absolute) and the C compiler (CC honoured).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
cc=${CC:-cc}
