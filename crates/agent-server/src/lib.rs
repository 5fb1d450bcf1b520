//! # aauth-agent-server
//!
//! The agent side of AAuth:
//!
//! * [`server`]: the agent server — its metadata and JWKS (E§8.1), and
//!   agent tokens for enrolled delegates (E§5, profile: P-DEL-1, P-DEL-2),
//!   with [`store`] holding delegates and enrollment codes (P-AS-8).
//!
//! The agent that calls resources and climbs the levels they ask for is the
//! `aauth-agent` library crate; this package's binary (`enroll`, `renew`,
//! `call`) is one of its users.
//!
//! ```text
//!   delegate ──enroll (hwk + code)──────────▶ agent server ── agent token
//!   delegate ──renew (jwt + new key proof)──▶ agent server ── agent token
//!   agent ──call──▶ resource ─401 Agent-Auth─▶ auth server ─▶ retry authorized
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::{AppState, app};
