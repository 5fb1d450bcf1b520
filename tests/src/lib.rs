//! End-to-end support: the real `aauth-agent-server`, `aauth-resource` and
//! `aauth-auth-server` binaries, started on loopback in dev mode.
#![forbid(unsafe_code)]

pub mod chain;
pub mod demo;
pub mod harness;
pub mod load;
pub mod user;
pub mod world;
