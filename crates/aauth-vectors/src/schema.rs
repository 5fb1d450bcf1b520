//! The JSON schema of the vector files, as serde types. The generator
//! writes them; the runner reads the committed files back through them.
//! `spec-vectors/README.md` documents every field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A file of cases: `thumbprints.json` … `negative.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile<C> {
    /// What the file pins.
    pub description: String,
    /// [`crate::SCHEMA_VERSION`].
    pub version: u32,
    /// The cases; names are unique within the file.
    pub cases: Vec<C>,
}

/// `keys.json`: the fixed keys and the fixed clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// What the file holds.
    pub description: String,
    /// [`crate::SCHEMA_VERSION`].
    pub version: u32,
    /// The clock every case uses unless it says otherwise (Unix seconds).
    pub now: u64,
    /// The keys.
    pub keys: Vec<KeyEntry>,
}

/// One fixed key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The name cases use for it.
    pub name: String,
    /// Who holds it in the vectors.
    pub role: String,
    /// Where it comes from (an RFC, or how it is derived).
    pub source: String,
    /// The `kid` under which its owner publishes it, if published.
    pub kid: Option<String>,
    /// The private JWK (`d` included: these keys are public test material).
    pub private_jwk: Value,
    /// The public JWK.
    pub public_jwk: Value,
    /// Its RFC 7638 SHA-256 thumbprint.
    pub thumbprint: String,
}

/// `directory.json`: what an HTTP GET of each URL returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    /// What the file holds.
    pub description: String,
    /// [`crate::SCHEMA_VERSION`].
    pub version: u32,
    /// URL → JSON document. A URL absent here does not resolve.
    pub documents: Map<String, Value>,
}

/// An HTTP request: method, target, headers in order, body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The method.
    pub method: String,
    /// The authority the signer sent the request to (signature bases only:
    /// verifiers use their configured authority, P-SIG-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Path and optional `?query`, as sent.
    pub target: String,
    /// Header field lines in order: `[name, value]`.
    pub headers: Vec<(String, String)>,
    /// The body as UTF-8 text, or `null` for none.
    pub body: Option<String>,
}

/// `thumbprints.json` case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbprintCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// The JWK as a peer would send it.
    pub jwk: Value,
    /// RFC 7638 §3.2's canonical JSON.
    pub thumbprint_input: String,
    /// base64url(SHA-256(thumbprint_input)).
    pub thumbprint: String,
}

/// `content-digest.json` case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentDigestCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// Emit or verify.
    #[serde(flatten)]
    pub op: ContentDigestOp,
}

/// What a `content-digest.json` case does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ContentDigestOp {
    /// A signer emits `header` for `body`.
    Emit {
        /// The body (UTF-8).
        body: String,
        /// The `Content-Digest` value emitted.
        header: String,
    },
    /// A verifier receives `header` with `body`.
    Verify {
        /// The received `Content-Digest` value.
        header: String,
        /// The received body (UTF-8).
        body: String,
        /// `null` when accepted, else the error code.
        error: Option<String>,
        /// Informative: our description of the failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// A typed `Signature-Key` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureKeyValue {
    /// The member's label.
    pub label: String,
    /// The spelling received: `sk0` or `parenthesised` (parse cases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// `hwk`, `jwks_uri`, `jwt` or `x509` (aliases resolved).
    pub scheme: String,
    /// The scheme's parameters by their SK0 names (aliases resolved, defaults
    /// filled in, unknown parameters dropped).
    pub params: Map<String, Value>,
}

/// `signature-key.json` case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignatureKeyCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// Parse or emit.
    #[serde(flatten)]
    pub op: SignatureKeyOp,
}

/// What a `signature-key.json` case does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SignatureKeyOp {
    /// Parse `header`.
    Parse {
        /// The received header value.
        header: String,
        /// The typed value, when accepted.
        expect: Option<SignatureKeyValue>,
        /// The error code, when refused.
        error: Option<String>,
        /// Informative: our description of the failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Emit `value` in both syntaxes.
    Emit {
        /// The typed value.
        value: SignatureKeyValue,
        /// SK0's dictionary form (what we send, P-SK-1).
        sk0: String,
        /// The explainer's parenthesised form (P-SK-2).
        parenthesised: String,
    },
}

/// A typed `Agent-Auth` challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeValue {
    /// `pseudonymous`, `identified` or `authorized`.
    pub level: String,
    /// `user_interaction`, if any.
    pub user_interaction: Option<String>,
    /// `resource_token`, if any.
    pub resource_token: Option<String>,
    /// `auth_server`, if any.
    pub auth_server: Option<String>,
}

/// `agent-auth.json` case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentAuthCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// Parse or emit.
    #[serde(flatten)]
    pub op: AgentAuthOp,
}

/// What an `agent-auth.json` case does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AgentAuthOp {
    /// Parse `header` (an agent reading a challenge).
    Parse {
        /// The received header value.
        header: String,
        /// The typed value, when accepted.
        expect: Option<ChallengeValue>,
        /// `"malformed"` when the header must be refused.
        error: Option<String>,
        /// Informative: our description of the failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Emit `value` (a resource building a challenge).
    Emit {
        /// The typed value.
        value: ChallengeValue,
        /// The header value emitted.
        header: String,
    },
}

/// `signature-bases.json` case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// Whether our signer emits exactly these headers for the request
    /// without them (given `created`, `nonce` and the `Signature-Key` value).
    pub emitted_by_signer: bool,
    /// `created`.
    pub created: u64,
    /// The `Nonce` sent, if any.
    pub nonce: Option<String>,
    /// The covered components, in order.
    pub components: Vec<String>,
    /// The signed request as sent (signature headers included).
    pub request: HttpRequest,
    /// The RFC 9421 §2.5 signature base (LF line ends, no trailing newline).
    pub signature_base: String,
}

/// How a case's verifier is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierSpec {
    /// The verifier's identifier (the `aud` tokens must name).
    pub identifier: String,
    /// The authority used for `@authority` (P-SIG-5), never `Host`.
    pub authority: String,
    /// Auth servers whose auth tokens are accepted.
    pub trusted_auth_servers: Vec<String>,
    /// `production` (https origins only) or `dev`.
    pub origin_mode: String,
    /// Allowed distance of `created` from `now`, seconds.
    pub max_skew: u64,
    /// Whether a `Nonce` header is required.
    pub require_nonce: bool,
    /// Whether base64url / unpadded `Signature` values are accepted (P-SIG-7).
    pub lenient_base64: bool,
    /// Components required beyond E§10.3 (D§10.3).
    pub additional_components: Vec<String>,
    /// Seconds of grace after a token's `exp` (P-TOK-5).
    pub token_leeway: u32,
}

/// What a verified request established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `pseudonymous`, `identified` or `authorized` (P-CH-2).
    pub level: String,
    /// `hwk`, `jwks_uri` or `jwt`.
    pub scheme: String,
    /// RFC 7638 thumbprint of the key that signed the request.
    pub key_thumbprint: String,
    /// The agent identifier, if established.
    pub agent: Option<String>,
    /// The agent delegate, if established.
    pub delegate: Option<String>,
    /// The auth token's scope, if any.
    pub scope: Option<String>,
}

/// `requests.json` case: a request that verifies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// The verifier's clock.
    pub now: u64,
    /// The verifier.
    pub verifier: VerifierSpec,
    /// The request as received.
    pub request: HttpRequest,
    /// What verification establishes.
    pub expect: Expect,
}

/// `negative.json` case: an input refused with one error code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NegativeCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// The verifier's clock.
    pub now: u64,
    /// What is checked.
    #[serde(flatten)]
    pub input: NegativeInput,
    /// The P-ERR-1 error code.
    pub error: String,
    /// Informative: our description (`error_description`) of the failure.
    pub detail: String,
}

/// The input of a negative case, by kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NegativeInput {
    /// A request verified as E§10.7 describes.
    Request {
        /// The verifier.
        verifier: VerifierSpec,
        /// The request as received.
        request: HttpRequest,
    },
    /// A resource token validated by an auth server (E§6.5).
    ResourceToken {
        /// The auth server and the requesting agent.
        context: ResourceTokenContextSpec,
        /// The compact token.
        token: String,
    },
    /// An agent token validated on its own (E§5.7 steps 1–11).
    AgentToken {
        /// The recipient.
        context: AgentTokenContextSpec,
        /// The compact token.
        token: String,
    },
    /// An auth token validated on its own by a resource (E§7.7 steps 1–12).
    AuthToken {
        /// The resource.
        context: AuthTokenContextSpec,
        /// The compact token.
        token: String,
    },
}

/// The auth server's view when it validates a resource token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTokenContextSpec {
    /// This auth server's identifier.
    pub auth_server: String,
    /// The requesting agent, from its verified request.
    pub agent: String,
    /// The public key that signed the agent's request.
    pub agent_key: Value,
}

/// The recipient's view when it validates an agent token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTokenContextSpec {
    /// The recipient's identifier.
    pub recipient: String,
}

/// The resource's view when it validates an auth token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTokenContextSpec {
    /// The resource's identifier (`aud`).
    pub audience: String,
    /// The auth servers it trusts.
    pub trusted_auth_servers: Vec<String>,
}

/// `token-requests.json` case: a form body and what an auth server reads
/// from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequestCase {
    /// Unique name.
    pub name: String,
    /// What it pins.
    pub description: String,
    /// The body, as sent (`application/x-www-form-urlencoded`).
    pub body: String,
    /// What is read, when the body is a token request.
    pub expect: Option<TokenRequestValue>,
    /// The wire error code (P-ERR-1), when it is not.
    pub error: Option<String>,
    /// Informative: our description of the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A token request as read: its type and its parameters, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequestValue {
    /// `auth`, `code`, `refresh` or `exchange`.
    pub request_type: String,
    /// Every parameter the request type reads, by name, decoded.
    pub params: std::collections::BTreeMap<String, String>,
}
