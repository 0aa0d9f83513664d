//! mptcp-ss: a live view of MPTCP connections and their subflows (see `mptcp_tools::cli::ss`).
fn main() -> std::process::ExitCode {
    mptcp_tools::cli::ss::main(std::env::args_os())
}
