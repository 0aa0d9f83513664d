//! mptcp-cat: ncat-style client/server over MPTCP (see `mptcp_tools::cli::cat`).
fn main() -> std::process::ExitCode {
    mptcp_tools::cli::cat::main(std::env::args_os().collect())
}
