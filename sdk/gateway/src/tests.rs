//! Crate-internal tests of proposal construction.
