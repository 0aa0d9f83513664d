//! mptcp-token: see `mptcp_tools::cli::token`.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = mptcp_tools::cli::token::TokenArgs::parse();
    ExitCode::from(mptcp_tools::cli::token::main_with_args(args))
}
