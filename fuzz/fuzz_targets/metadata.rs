//! Metadata and key-set documents fetched from the network (E§8, P-MD-2):
//! agent, auth server and resource metadata, and JWKS. The first byte
//! chooses the document. Never a panic; a key set that parses, written back
//! out, parses to the same keys.
#![no_main]

use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::jwk::Jwks;
use aauth_protocol::metadata::{AgentMetadata, AuthServerMetadata, ResourceMetadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, document)) = data.split_first() else {
        return;
    };
    let mode = if choice & 0x80 == 0 {
        OriginMode::Production
    } else {
        OriginMode::Dev
    };
    let from = Origin::parse("https://party.example", OriginMode::Production).expect("an origin");
    match choice % 4 {
        0 => {
            let _ = AgentMetadata::from_json(document, &from, mode);
        }
        1 => {
            let _ = AuthServerMetadata::from_json(document, &from, mode);
        }
        2 => {
            let _ = ResourceMetadata::from_json(document, &from, mode);
        }
        _ => {
            if let Ok(jwks) = Jwks::from_json(document) {
                let written = serde_json::to_vec(&jwks.to_json_value()).expect("JSON");
                let again = Jwks::from_json(&written)
                    .unwrap_or_else(|e| panic!("a key set we wrote does not parse: {e}"));
                assert_eq!(again, jwks);
            }
        }
    }
});
