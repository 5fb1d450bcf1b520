//! # aauth-agent-server
//!
//! The agent side of AAuth:
//!
//! * [`server`]: the agent server — its metadata and JWKS (E§8.1), and
//!   agent tokens for enrolled delegates (E§5, profile: P-DEL-1, P-DEL-2),
//!   with [`store`] holding delegates and enrollment codes (P-AS-8).
//! * [`agent`]: an agent that calls resources and climbs the levels the
//!   resources ask for (E§4, E§9): pseudonymous → identified → authorized,
//!   through the auth server's direct grant or the user's consent.
//!
//! ```text
//!   delegate ──enroll (hwk + code)──────────▶ agent server ── agent token
//!   delegate ──renew (jwt + new key proof)──▶ agent server ── agent token
//!   agent ──call──▶ resource ─401 Agent-Auth─▶ auth server ─▶ retry authorized
//! ```
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::{AppState, app};
