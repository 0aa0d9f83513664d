//! mptcp-token: see `mptcp_tools::cli::token`.
fn main() -> std::process::ExitCode {
    mptcp_tools::cli::token::main(std::env::args_os())
}
