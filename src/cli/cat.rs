//! `mptcp-cat`: an ncat-style client and server over MPTCP.
//!
//! - [`args`]: the command line (DESIGN.md contract).
//! - `kernel_mode`: `--stack kernel`, the host's IPPROTO_MPTCP sockets.
//! - `pm_config`: `--local`/`--limits`/`--scheduler` applied to the kernel's
//!   path manager for the run.
//! - [`session`]: the ncat session rules, once, over a `Transport` trait
//!   the kernel and embedded modes implement.
//! - [`output`]: standard output, `-o` and `-x` (ncat's hex dump), and the
//!   `mptcp-cat: ` remarks on standard error.
//! - `embedded_mode`: `--stack embedded`, our own stack through a TUN
//!   device, driven by `crate::stack::driver::tun_loop`.
//! - [`sim_mode`]: `--sim`, client and server both our stack over the
//!   simulated network; dispatched before argument parsing, as it owns its
//!   own options (see [`main`]).

pub mod args;
mod embedded_mode;
mod kernel_mode;
pub mod output;
mod pm_config;
pub mod sim_mode;

use std::ffi::OsString;
use std::process::ExitCode;

pub use args::CatArgs;
use args::StackKind;

use crate::sys::signals::{self, Termination};

/// Whether the command line asks for the simulator (`--sim` anywhere before
/// a `--`).
pub fn wants_sim(argv: &[OsString]) -> bool {
    argv.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--sim")
}

/// The whole program: parse, run, map the outcome to an exit status
/// (0 clean end, 1 failure with a one-line reason, 2 usage error,
/// 128+N killed by signal N).
pub fn main(argv: Vec<OsString>) -> ExitCode {
    if wants_sim(&argv) {
        return run_sim(argv);
    }
    crate::cli::main("mptcp-cat", argv, |args: CatArgs| {
        run(&args).map(|()| 0).map_err(|e| {
            let mut f = crate::cli::Failure::from(e);
            if let Some(sig) = signals::received_signal() {
                f.status = signals::exit_status(sig);
            }
            f
        })
    })
}

/// `mptcp-cat --sim ...`: the simulator ([`sim_mode`]) parses its
/// own arguments (`--path`, `--pcap`, `--scheduler`, `--cc`, `--seed`) from
/// the same argv.
fn run_sim(argv: Vec<OsString>) -> ExitCode {
    sim_mode::main(argv)
}

/// Run with parsed arguments.
pub fn run(args: &CatArgs) -> anyhow::Result<()> {
    let target = args.target().map_err(anyhow::Error::msg)?;
    args.validate().map_err(anyhow::Error::msg)?;
    let term = Termination::install()?;
    match args.stack_kind() {
        StackKind::Kernel => kernel_mode::run(args, target, &term),
        StackKind::Embedded => embedded_mode::run(args, target, &term),
    }
}
