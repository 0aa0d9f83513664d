//! `mptcp-dump --plot`: pictures of a capture's MPTCP connections.
//! [`series`] takes the numbers from the analysis (pure); [`render`] draws
//! them as SVG. Kinds:
//! - `dsn`: relative data sequence number against time, a colour per
//!   subflow, reinjections as crosses, the DATA_ACK as a line, subflow and
//!   connection events as labelled vertical lines;
//! - `tput`: goodput per subflow and in total over time windows.

pub mod render;
pub mod series;

/// Which picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Data sequence number against time, per subflow.
    Dsn,
    /// Goodput per subflow and in total over time.
    Tput,
}
