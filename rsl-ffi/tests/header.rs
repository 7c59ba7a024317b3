//! The checked-in C header is what cbindgen generates from this crate now (build.rs writes
//! the fresh one to OUT_DIR). `RSL_BLESS=1` updates the checked-in copy.

#[test]
fn include_rsl_c_h_is_fresh() {
    let fresh =
        std::fs::read_to_string(concat!(env!("OUT_DIR"), "/rsl_c.h")).expect("build.rs wrote the header");
    let checked_in = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/rsl_c.h");
    if std::env::var_os("RSL_BLESS").is_some() {
        std::fs::write(checked_in, &fresh).expect("include/ is writable");
    }
    let current = std::fs::read_to_string(checked_in).unwrap_or_default();
    assert!(
        current == fresh,
        "include/rsl_c.h is stale: regenerate it with RSL_BLESS=1 cargo test -p rsl-ffi --test header"
    );
}
