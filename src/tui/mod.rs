//! The mptcp-ss terminal UI (ratatui): [`app::App`] holds the state and
//! turns keys into actions, [`view`] draws it, [`run`] is the one loop that
//! reads the terminal; [`text`] prints snapshots in ss's formats;
//! [`escape`] keeps text from outside from driving the terminal.
pub mod app;
pub mod escape;
pub mod run;
pub mod text;
pub mod view;

#[cfg(test)]
mod tests;
