//! mptcp-ss: a live view of MPTCP connections and their subflows.
use std::process::ExitCode;

use clap::Parser;
use mptcp_tools::cli::ss::{Args, run};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcp-ss: {e:#}");
            ExitCode::FAILURE
        }
    }
}
