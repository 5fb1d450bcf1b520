//! # aauth-protocol
//!
//! The Agent Auth (AAuth) protocol without I/O: identifiers, keys and JWKs,
//! the RFC 9421 signing profile with the `Signature-Key` header, the
//! `Agent-Auth` challenge, compact JWS and the three tokens, metadata
//! documents, and the error codes. Fetching keys and metadata, clocks and
//! sockets belong to the caller: validation functions take the current time
//! and the already-resolved keys.
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
pub mod signature_key;
pub mod tokens;
pub mod verify;
