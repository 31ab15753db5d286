//! The `evident` binary: the CLI lives in `evident::cli`.

fn main() -> std::process::ExitCode {
    evident::cli::main()
}
