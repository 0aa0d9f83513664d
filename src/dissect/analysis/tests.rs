//! Synthetic packet sequences for cases the captures do not show.
