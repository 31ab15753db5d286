//! The `evident` CLI built inside the test package, so end-to-end tests always run a binary
//! built from the current sources (`CARGO_BIN_EXE_evident-under-test`).

fn main() -> std::process::ExitCode {
    evident::cli::main()
}
