//! # aauth-http
//!
//! The I/O edge of AAuth, shared by the three servers and the agent:
//!
//! * [`guard`] and [`fetch`]: fetching peers' documents as hostile input
//!   (profile: P-MD-3): HTTPS only, no private addresses, no redirects,
//!   64 KiB, 5 s.
//! * [`discovery`]: metadata and JWKS with the P-MD-3 cache, and the bridge
//!   from [`aauth_protocol::verify::KeyNeed`] to a synchronous key directory.
//! * [`server`]: verifying requests in axum handlers (E§10.7) with the
//!   `Nonce` replay cache of [`replay`], which fails closed, and rendering
//!   errors with their `Agent-Auth` challenge (P-ERR-1..3).
//! * [`browser`]: HTML pages and the redirect URI rule, for the pages a
//!   user's browser is shown or sent through (P-AS-4, P-UI-2).
//! * [`client`]: the signing side — sign a request as an AAuth identity
//!   (E§10), send it, and read the `Agent-Auth` challenge and error body;
//!   [`trace`] shows its exchanges with every credential redacted.
#![forbid(unsafe_code)]

pub mod browser;
pub mod client;
pub mod discovery;
pub mod fetch;
pub mod guard;
pub mod replay;
pub mod runtime;
pub mod server;
pub mod state;
pub mod trace;
