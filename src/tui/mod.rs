//! The mptcp-ss terminal UI (ratatui): App state, views, run loop.
