//! Compiles the small C helper that gives INCRBYFLOAT and HINCRBYFLOAT the platform's long
//! double, as Redis computes them (see `src/cmd/long_double.rs`).

fn main() {
    println!("cargo:rerun-if-changed=src/cmd/long_double.c");
    cc::Build::new().file("src/cmd/long_double.c").opt_level(2).warnings(true).compile("slotcore_long_double");
}
