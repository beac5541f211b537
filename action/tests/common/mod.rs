//! What several test binaries share.

pub mod action_runner;
