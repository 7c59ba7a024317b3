//! The `rsl` command-line tool.

fn main() {
    println!("rsl {}", env!("RSL_BUILD_COMMIT"));
}
