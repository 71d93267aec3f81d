//! The `parqour` binary: everything is in the library; see `parqour::cli`.

fn main() -> std::process::ExitCode {
    parqour::cli::main()
}
