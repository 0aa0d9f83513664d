//! mptcp-dump: see `mptcp_tools::cli::dump`.
fn main() -> std::process::ExitCode {
    mptcp_tools::cli::dump::main(std::env::args_os())
}
