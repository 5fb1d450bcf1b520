//! # aauth-protocol
//!
//! The Agent Auth (AAuth) protocol without I/O: everything a party needs to
//! put on the wire or check from it, and nothing that touches a socket, a
//! clock or a disk. The explainer of November 2025 (`E§`), the Internet-Draft
//! of January 2026 (`D§`) and the `Signature-Key` draft -00 (`SK0§`), with the
//! decisions on their gaps recorded in `docs/profile.md` (`P-…`).
//!
//! ```text
//!            agent                         resource / auth server
//!  ─────────────────────────────     ─────────────────────────────────────
//!  keys::SigningKey                   verify::verify_request
//!  signature_key::SignatureKeyField     ├ signature_key::parse     E§10.1.1
//!  httpsig::sign ──── request ───────▶  ├ httpsig::prepare         E§10.3–10.5
//!                                       ├ KeyDirectory lookup      E§10.7
//!                                       ├ tokens::{agent,auth}_token::validate
//!                                       └ Prepared::verify(key)
//!  challenge::AgentAuth::parse ◀─ 401 ─ challenge::AgentAuth       E§4
//!  tokens::peek …                       tokens::resource_token     E§6
//! ```
//!
//! | module | what it implements |
//! |---|---|
//! | [`ids`] | identifiers as parsed types: [`ids::Origin`] (P-MD-1), `Kid`, `Scope`, `Label`, `Thumbprint` |
//! | [`jwk`], [`keys`] | Ed25519 and P-256 keys, JWK and JWKS, RFC 7638 thumbprints |
//! | [`signature_key`] | the `Signature-Key` header in SK0 and explainer syntax (SK0§2, E§10.1) |
//! | [`httpsig`], [`content_digest`] | RFC 9421 for the AAuth profile, RFC 9530 (E§10.3–10.6) |
//! | [`challenge`] | the `Agent-Auth` header and the three levels (E§4, D§5) |
//! | [`jose`], [`tokens`] | compact JWS; agent, resource and auth tokens with their validation steps (E§5–7) |
//! | [`metadata`] | the three well-known documents (E§8, D§9) |
//! | [`token_request`] | the token endpoint's form body, one type per `request_type` (E§9.3–9.10) |
//! | [`verify`] | one request, end to end (E§10.7) |
//! | [`error`] | error codes and the P-ERR-1 table, as one exhaustive match |
//! | [`secret`] | credentials as their own types, never shown whole by `Debug` |
//!
//! Validation functions take the current time and the keys the caller has
//! resolved: [`verify::Presented::read`] reads a request once and its
//! [`key_need`](verify::Presented::key_need) says which party's keys it
//! needs, the caller fetches them however it likes, and
//! [`verify::Presented::verify`] answers from a [`verify::KeyDirectory`]
//! synchronously ([`verify::verify_request`] does both for a directory that
//! already holds every key).
#![forbid(unsafe_code)]

pub mod b64;
pub mod challenge;
pub mod content_digest;
pub mod error;
pub mod httpsig;
pub mod ids;
pub mod jose;
pub mod jwk;
pub mod keys;
pub mod metadata;
pub mod secret;
pub mod signature_key;
pub mod token_request;
pub mod tokens;
pub mod verify;
