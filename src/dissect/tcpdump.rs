//! tcpdump-style text printer (placeholder: filled in by its owner)
