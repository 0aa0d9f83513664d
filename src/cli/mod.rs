//! The tools' command lines: clap argument types and `run` functions. The
//! binaries in src/bin only call each tool's `main`, and every tool's `main`
//! goes through [`main`] here: one place that parses, runs and turns the
//! outcome into an exit status.
pub mod cat;
pub mod dump;
pub mod plot;
pub mod ss;
pub mod token;

use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;

use clap::Parser;

/// Why a tool ends badly: the one-line reason printed as `TOOL: reason` on
/// standard error, and the exit status (1 unless the tool documents another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    /// A failure with exit status 1.
    pub fn new(message: impl fmt::Display) -> Failure {
        Failure::with_status(1, message)
    }

    pub fn with_status(status: u8, message: impl fmt::Display) -> Failure {
        Failure { status, message: message.to_string() }
    }
}

/// anyhow errors print with their causes (`outer: inner`), status 1.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::new(format!("{e:#}"))
    }
}

/// Every tool's body: parse `argv` as `A` (clap's usage errors print clap's
/// message and exit 2, `--help`/`--version` exit 0, as `A::parse()` does),
/// call `run`, and map its outcome: `Ok(status)` exits with that status (a
/// tool may end with 1 after printing its result, e.g. a mismatch), a
/// [`Failure`] prints `tool: message` and exits with its status.
pub fn main<A: Parser>(
    tool: &str,
    argv: impl IntoIterator<Item = OsString>,
    run: impl FnOnce(A) -> Result<u8, Failure>,
) -> ExitCode {
    let args = match A::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    match run(args) {
        Ok(status) => ExitCode::from(status),
        Err(f) => {
            eprintln!("{tool}: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Toy {
        #[arg(long)]
        n: u8,
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn status_mapping() {
        let ok = main("toy", argv(&["toy", "--n", "3"]), |t: Toy| Ok(t.n));
        assert_eq!(ok, ExitCode::from(3));
        let usage = main("toy", argv(&["toy", "--bogus"]), |_: Toy| Ok(0));
        assert_eq!(usage, ExitCode::from(2));
        let failed = main("toy", argv(&["toy", "--n", "1"]), |_: Toy| Err(Failure::with_status(5, "no")));
        assert_eq!(failed, ExitCode::from(5));
        let anyhow_fail: Failure = anyhow::anyhow!("inner").context("outer").into();
        assert_eq!(anyhow_fail, Failure { status: 1, message: "outer: inner".into() });
    }
}
