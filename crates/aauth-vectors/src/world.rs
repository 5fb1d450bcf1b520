//! The fixed world every vector lives in: the clock, the parties' origins,
//! their keys (`keys.json`) and what their metadata URLs return
//! (`directory.json`), plus a [`KeyDirectory`] that resolves keys through
//! those documents as a real verifier does.

use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::{JwkMembers, Jwks, JwksKey, PublicKey};
use aauth_protocol::keys::{PrivateJwk, SigningKey, sha256};
use aauth_protocol::metadata::{AgentMetadata, AuthServerMetadata, ResourceMetadata};
use aauth_protocol::tokens::KeyLookupError;
use aauth_protocol::verify::{KeyDirectory, KeyOwner};
use serde_json::{Map, Value, json};

use crate::schema::{DirectoryFile, KeyEntry, KeysFile};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure};

/// The fixed clock: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;
/// The agent server (and agent identifier).
pub const AGENT: &str = "https://agent.example";
/// The resource.
pub const RESOURCE: &str = "https://resource.example";
/// The resource's authority.
pub const RESOURCE_AUTHORITY: &str = "resource.example";
/// The auth server.
pub const AUTH: &str = "https://auth.example";
/// The agent server's key id.
pub const AGENT_KID: &str = "agent-key-1";
/// The resource's key id.
pub const RESOURCE_KID: &str = "resource-key-1";
/// The auth server's key id.
pub const AUTH_KID: &str = "auth-key-1";
/// The agent delegate's `sub`.
pub const DELEGATE_SUB: &str = "delegate-1";

/// RFC 9421 B.1.4 (`test-key-ed25519`).
const B14_D: &str = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU";
const B14_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";
/// RFC 8037 A.1.
const A1_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const A1_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// RFC 9421 B.1.3 (`test-key-ecc-p256`).
const B13_D: &str = "UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs";
const B13_X: &str = "qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA";
const B13_Y: &str = "Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0";

/// One key of the world.
#[derive(Debug)]
pub struct NamedKey {
    /// The name cases use.
    pub name: &'static str,
    /// Who holds it.
    pub role: &'static str,
    /// Where it comes from.
    pub source: String,
    /// The `kid` its owner publishes it under.
    pub kid: Option<&'static str>,
    /// The key.
    pub key: SigningKey,
}

impl NamedKey {
    /// The public key.
    pub fn public(&self) -> &PublicKey {
        self.key.public_key()
    }
}

/// The parties, their keys and documents.
#[derive(Debug)]
pub struct World {
    /// RFC 9421 B.1.4: the agent server's signing key.
    pub agent_server: NamedKey,
    /// RFC 8037 A.1: the agent delegate's key.
    pub delegate: NamedKey,
    /// Derived: the resource's key.
    pub resource: NamedKey,
    /// Derived: the auth server's key.
    pub auth: NamedKey,
    /// Derived: a key nobody trusts.
    pub attacker: NamedKey,
    /// RFC 9421 B.1.3: a P-256 delegate key (verify-only vectors).
    pub p256: NamedKey,
}

fn private_jwk(kty: &str, crv: &str, d: &str, x: &str, y: Option<&str>) -> Result<SigningKey> {
    SigningKey::from_private_jwk(&PrivateJwk::new(JwkMembers {
        kty: Some(kty.into()),
        crv: Some(crv.into()),
        d: Some(d.into()),
        x: Some(x.into()),
        y: y.map(Into::into),
        ..JwkMembers::default()
    }))
    .ctx("loading a fixed key")
}

/// The seed string a derived key comes from.
fn derivation(label: &str) -> String {
    format!("aauth-vectors/{label}")
}

fn derived(label: &str) -> Result<SigningKey> {
    SigningKey::ed25519_from_seed(&sha256(derivation(label).as_bytes())).ctx("deriving a key")
}

/// Parses an origin of the fixed world.
pub fn origin(text: &str) -> Result<Origin> {
    Origin::parse(text, OriginMode::Production).ctx("origin")
}

/// Makes a key id.
pub fn kid(text: &str) -> Result<Kid> {
    Kid::new(text.to_owned()).ctx("kid")
}

impl World {
    /// Builds the world from the fixed key material.
    pub fn new() -> Result<Self> {
        let derived_source = |label: &str| {
            format!(
                "derived: Ed25519 key whose 32-byte seed (d) is SHA-256 of the ASCII string \"{}\"",
                derivation(label)
            )
        };
        Ok(Self {
            agent_server: NamedKey {
                name: "agent-server",
                role: "agent server https://agent.example: signs agent tokens; also signs requests as the agent (jwks_uri)",
                source: "RFC 9421 Appendix B.1.4 test-key-ed25519".into(),
                kid: Some(AGENT_KID),
                key: private_jwk("OKP", "Ed25519", B14_D, B14_X, None)?,
            },
            delegate: NamedKey {
                name: "delegate",
                role: "agent delegate delegate-1: signs requests (hwk, or jwt with an agent or auth token binding it in cnf.jwk)",
                source: "RFC 8037 Appendix A.1".into(),
                kid: None,
                key: private_jwk("OKP", "Ed25519", A1_D, A1_X, None)?,
            },
            resource: NamedKey {
                name: "resource",
                role: "resource https://resource.example: signs resource tokens",
                source: derived_source("resource"),
                kid: Some(RESOURCE_KID),
                key: derived("resource")?,
            },
            auth: NamedKey {
                name: "auth-server",
                role: "auth server https://auth.example: signs auth tokens",
                source: derived_source("auth-server"),
                kid: Some(AUTH_KID),
                key: derived("auth-server")?,
            },
            attacker: NamedKey {
                name: "attacker",
                role: "a key no party publishes or binds: signs what must not verify",
                source: derived_source("attacker"),
                kid: None,
                key: derived("attacker")?,
            },
            p256: NamedKey {
                name: "p256-delegate",
                role: "a P-256 agent delegate (hwk): verify-only vectors, ECDSA signing being randomised",
                source: "RFC 9421 Appendix B.1.3 test-key-ecc-p256".into(),
                kid: None,
                key: private_jwk("EC", "P-256", B13_D, B13_X, Some(B13_Y))?,
            },
        })
    }

    /// Every key, in `keys.json` order.
    pub fn keys(&self) -> [&NamedKey; 6] {
        [
            &self.agent_server,
            &self.delegate,
            &self.resource,
            &self.auth,
            &self.attacker,
            &self.p256,
        ]
    }

    /// `keys.json`.
    pub fn keys_file(&self) -> Result<KeysFile> {
        let keys = self
            .keys()
            .into_iter()
            .map(|k| {
                let private = k.key.to_private_jwk().ctx("private JWK")?;
                Ok(KeyEntry {
                    name: k.name.into(),
                    role: k.role.into(),
                    source: k.source.clone(),
                    kid: k.kid.map(Into::into),
                    private_jwk: serde_json::to_value(private.members()).ctx("private JWK")?,
                    public_jwk: k.public().to_json_value(),
                    thumbprint: k.public().thumbprint().as_str().to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KeysFile {
            description: "The fixed keys of the AAuth spec vectors (public test material: never use them for anything else) and the fixed clock `now` (2026-01-01T00:00:00Z).".into(),
            version: SCHEMA_VERSION,
            now: NOW,
            keys,
        })
    }

    fn jwks(named: &NamedKey) -> Result<Value> {
        let kid = kid(named.kid.ctx("published key without kid")?)?;
        Ok(Jwks::new(vec![JwksKey {
            kid,
            key: named.public().clone(),
        }])
        .to_json_value())
    }

    /// `directory.json`.
    pub fn directory_file(&self) -> Result<DirectoryFile> {
        let mut documents = Map::new();
        documents.insert(
            format!("{AGENT}/.well-known/aauth-agent"),
            json!({
                "agent": AGENT,
                "jwks_uri": format!("{AGENT}/jwks.json"),
                "name": "Example Agent",
            }),
        );
        documents.insert(
            format!("{AGENT}/jwks.json"),
            Self::jwks(&self.agent_server)?,
        );
        documents.insert(
            format!("{AUTH}/.well-known/aauth-issuer"),
            json!({
                "issuer": AUTH,
                "jwks_uri": format!("{AUTH}/jwks.json"),
                "agent_token_endpoint": format!("{AUTH}/agent/token"),
                "agent_auth_endpoint": format!("{AUTH}/agent/auth"),
                "agent_signing_algs_supported": ["ed25519", "ecdsa-p256-sha256"],
                "request_types_supported": ["auth", "code", "refresh", "exchange"],
            }),
        );
        documents.insert(format!("{AUTH}/jwks.json"), Self::jwks(&self.auth)?);
        documents.insert(
            format!("{RESOURCE}/.well-known/aauth-resource"),
            json!({
                "resource": RESOURCE,
                "jwks_uri": format!("{RESOURCE}/jwks.json"),
                "supported_scopes": ["data.read", "data.write"],
            }),
        );
        documents.insert(format!("{RESOURCE}/jwks.json"), Self::jwks(&self.resource)?);
        Ok(DirectoryFile {
            description: "What an HTTPS GET of each URL returns (200, application/json). Resolve a key as a verifier does: {origin}/.well-known/aauth-{agent,issuer,resource} → jwks_uri → JWKS → kid. A URL absent here fails to resolve.".into(),
            version: SCHEMA_VERSION,
            documents,
        })
    }
}

/// Answers key lookups from `directory.json`, walking metadata → `jwks_uri`
/// → JWKS → `kid` with the protocol crate's own parsers.
#[derive(Debug, Clone)]
pub struct Directory {
    documents: Map<String, Value>,
}

impl Directory {
    /// A directory over the documents of `directory.json`.
    pub fn new(file: &DirectoryFile) -> Self {
        Self {
            documents: file.documents.clone(),
        }
    }

    fn fetch(&self, url: &str) -> std::result::Result<Vec<u8>, KeyLookupError> {
        let document = self
            .documents
            .get(url)
            .ok_or_else(|| KeyLookupError::Unavailable(format!("GET {url}: 404")))?;
        serde_json::to_vec(document).map_err(|e| KeyLookupError::Unavailable(e.to_string()))
    }
}

impl KeyDirectory for Directory {
    fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> std::result::Result<PublicKey, KeyLookupError> {
        let url = origin.well_known(owner.well_known());
        let metadata = self.fetch(&url)?;
        let mode = OriginMode::Production;
        let bad = |e: &dyn std::fmt::Display| KeyLookupError::Unavailable(format!("{url}: {e}"));
        let jwks_uri = match owner {
            KeyOwner::Agent => AgentMetadata::from_json(&metadata, origin, mode)
                .map(|m| m.jwks_uri)
                .map_err(|e| bad(&e))?,
            KeyOwner::AuthServer => AuthServerMetadata::from_json(&metadata, origin, mode)
                .map(|m| m.jwks_uri)
                .map_err(|e| bad(&e))?,
            KeyOwner::Resource => ResourceMetadata::from_json(&metadata, origin, mode)
                .map(|m| m.jwks_uri)
                .map_err(|e| bad(&e))?,
        };
        let jwks = Jwks::from_json(&self.fetch(jwks_uri.as_str())?).map_err(|e| bad(&e))?;
        jwks.find(kid)
            .cloned()
            .ok_or_else(|| KeyLookupError::UnknownKid(kid.clone()))
    }
}

/// Loads a key of `keys.json` by name.
pub fn signing_key(keys: &KeysFile, name: &str) -> Result<SigningKey> {
    let entry = keys
        .keys
        .iter()
        .find(|k| k.name == name)
        .ctx(&format!("key {name} in keys.json"))?;
    let members: JwkMembers =
        serde_json::from_value(entry.private_jwk.clone()).ctx("private_jwk")?;
    SigningKey::from_private_jwk(&PrivateJwk::new(members)).ctx("private_jwk")
}

/// Checks `keys.json`: every private key yields its public key and thumbprint.
pub fn check_keys(contents: &str, report: &mut Report) -> Result<()> {
    let file: KeysFile = serde_json::from_str(contents).ctx("parsing keys.json")?;
    for entry in &file.keys {
        let outcome = (|| {
            let key = signing_key(&file, &entry.name)?;
            let public = PublicKey::from_json_value(&entry.public_jwk).ctx("public_jwk")?;
            ensure(key.public_key() == &public, || {
                "private_jwk does not yield public_jwk".into()
            })?;
            ensure(public.thumbprint().as_str() == entry.thumbprint, || {
                format!("thumbprint is {}", public.thumbprint())
            })
        })();
        report.record("keys.json", &entry.name, outcome);
    }
    Ok(())
}

/// Checks `directory.json`: every metadata document parses for the origin it
/// is served from, and every key published under a `kid` is the `keys.json`
/// key with that `kid`.
pub fn check_directory(contents: &str, keys: &KeysFile, report: &mut Report) -> Result<()> {
    let file: DirectoryFile = serde_json::from_str(contents).ctx("parsing directory.json")?;
    let directory = Directory::new(&file);
    for entry in keys.keys.iter().filter(|k| k.kid.is_some()) {
        let outcome = (|| {
            let public = PublicKey::from_json_value(&entry.public_jwk).ctx("public_jwk")?;
            let kid = kid(entry.kid.as_deref().ctx("kid")?)?;
            let (owner, origin_text) = match entry.name.as_str() {
                "agent-server" => (KeyOwner::Agent, AGENT),
                "auth-server" => (KeyOwner::AuthServer, AUTH),
                "resource" => (KeyOwner::Resource, RESOURCE),
                other => return Err(VectorError(format!("no owner for published key {other}"))),
            };
            let found = directory
                .key(owner, &origin(origin_text)?, &kid)
                .ctx("resolving through directory.json")?;
            ensure(found == public, || {
                "directory.json publishes another key".into()
            })
        })();
        report.record("directory.json", &entry.name, outcome);
    }
    Ok(())
}
