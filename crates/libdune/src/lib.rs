//! libdune
