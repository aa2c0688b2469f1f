//! The shared library's SONAME is `libdune.so` whichever name a program linked it by
//! (`-lsthread`, `-ldune_gc`, ...): every such program records one library, and the
//! dynamic loader maps it once.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdune.so");
}
