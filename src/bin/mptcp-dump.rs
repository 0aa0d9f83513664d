//! mptcp-dump: see `mptcp_tools::cli::dump`.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = mptcp_tools::cli::dump::DumpArgs::parse();
    ExitCode::from(mptcp_tools::cli::dump::main_with_args(args))
}
