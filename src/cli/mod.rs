//! The tools' command lines: clap argument types and `run` functions. The
//! binaries in src/bin only call these and map errors to exit codes.
pub mod cat;
pub mod dump;
pub mod plot;
pub mod ss;
pub mod token;
