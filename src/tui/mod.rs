//! The mptcp-ss terminal UI (ratatui): [`app::App`] holds the state and
//! turns keys into actions, [`view`] draws it, [`run`] is the one loop that
//! reads the terminal; [`text`] prints snapshots in ss's formats.
pub mod app;
pub mod run;
pub mod text;
pub mod view;

#[cfg(test)]
mod tests;
