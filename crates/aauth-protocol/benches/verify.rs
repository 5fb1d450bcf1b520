//! The verifier's hot path, beside the raw signature checks it is built on.
//!
//! Every AAuth request costs one HTTP signature verification (E§10.7); the
//! `jwt` scheme adds the validation of the agent or auth token it carries
//! (E§5.7, E§7.7), which is one more signature. The groups:
//!
//! - `raw/`: one Ed25519 or P-256 verification through aws-lc-rs, the floor.
//! - `request/`: [`verify_request`] on a realistic signed request, per
//!   `Signature-Key` scheme, for a `GET` with a query and a `POST` with a
//!   JSON body, `Content-Digest` and `Nonce`. Signed once, verified in the loop.
//! - `token/`: each token's `validate` alone.
//! - `parts/`: the pieces of the request path, to see where time goes.
//! - `sign/`: the signer, for information.
//!
//! Keys come from an in-memory [`KeyDirectory`] (a `HashMap`), so lookups
//! cost next to nothing. `docs/performance.md` has the command and results.
#![expect(
    clippy::expect_used,
    reason = "benchmark set-up: a fixture that cannot be built must stop the run loudly"
)]

use std::collections::HashMap;
use std::hint::black_box;

use aauth_protocol::httpsig::{self, HeaderSource, Nonce, Request, SignOptions, VerifyPolicy};
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::keys::{Algorithm, SigningKey, VerifyingKey};
use aauth_protocol::signature_key::{self, AAUTH_AGENT_WELL_KNOWN, SignatureKeyField, Syntax};
use aauth_protocol::tokens::agent_token::{self, AgentTokenBuilder, AgentTokenContext};
use aauth_protocol::tokens::auth_token::{self, AuthTokenBuilder, AuthTokenContext};
use aauth_protocol::tokens::resource_token::{self, ResourceTokenBuilder, ResourceTokenContext};
use aauth_protocol::tokens::{self, KeyLookupError};
use aauth_protocol::verify::{KeyDirectory, KeyOwner, VerifierConfig, verify_request};
use criterion::{Criterion, criterion_group, criterion_main};

/// The verifier's clock; every signature and token is made at this instant.
const NOW: u64 = 1_730_217_600;
const RESOURCE: &str = "https://resource.example";
const AGENT: &str = "https://agent.example";
const AUTH: &str = "https://auth.example";
const AGENT_KID: &str = "agent-key-2024-10";
/// The key an agent signs its own requests with (`jwks_uri` scheme).
const AGENT_REQUEST_KID: &str = "agent-request-key-2024-10";
const AUTH_KID: &str = "auth-key-2024-10";
const RESOURCE_KID: &str = "resource-key-2024-10";
const DELEGATE: &str = "spiffe://agent.example/workload/photo-assistant";

const GET_TARGET: &str = "/photos/albums/vacation?limit=20&cursor=eyJvZmZzZXQiOjIwfQ";
const POST_TARGET: &str = "/photos/albums/vacation/items?notify=false";
const POST_BODY: &[u8] = br#"{"title":"Sunset over the harbour","tags":["sunset","harbour","2024"],"visibility":"private","source":"https://cdn.agent.example/uploads/3f9c2a.jpg"}"#;

fn now_secs() -> i64 {
    i64::try_from(NOW).expect("NOW fits in i64")
}

fn origin(text: &str) -> Origin {
    Origin::parse(text, OriginMode::Production).expect("fixture origin")
}

fn kid(text: &str) -> Kid {
    Kid::new(text.to_owned()).expect("fixture kid")
}

fn ed25519() -> SigningKey {
    SigningKey::generate(Algorithm::Ed25519).expect("Ed25519 key generation")
}

/// Keys already fetched, keyed by (owner, origin, kid).
#[derive(Debug, Default)]
struct Directory(HashMap<(KeyOwner, Origin, Kid), PublicKey>);

impl KeyDirectory for Directory {
    fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> Result<PublicKey, KeyLookupError> {
        self.0
            .get(&(owner, origin.clone(), kid.clone()))
            .cloned()
            .ok_or_else(|| KeyLookupError::UnknownKid(kid.clone()))
    }
}

impl Directory {
    fn issuer_keys(
        &self,
        owner: KeyOwner,
    ) -> impl Fn(&Origin, &Kid) -> Result<PublicKey, KeyLookupError> + '_ {
        move |iss: &Origin, k: &Kid| self.key(owner, iss, k)
    }
}

/// An owned request as a server holds it once received.
#[derive(Debug, Clone)]
struct Message {
    method: &'static str,
    target: &'static str,
    headers: Vec<(String, String)>,
    body: Option<&'static [u8]>,
}

impl Message {
    fn get() -> Self {
        Self {
            method: "GET",
            target: GET_TARGET,
            headers: base_headers(),
            body: None,
        }
    }

    fn post() -> Self {
        let mut headers = base_headers();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("Content-Length".into(), POST_BODY.len().to_string()));
        Self {
            method: "POST",
            target: POST_TARGET,
            headers,
            body: Some(POST_BODY),
        }
    }

    fn view(&self) -> Request<'_, Vec<(String, String)>> {
        Request {
            method: self.method,
            authority: "resource.example",
            target: self.target,
            headers: &self.headers,
            body: self.body,
        }
    }

    /// Signs with `key`, covering a fresh `Nonce` when `nonce` is set.
    fn signed(mut self, signature_key: &str, key: &SigningKey, nonce: bool) -> Self {
        let nonce = nonce.then(|| Nonce::generate().expect("nonce"));
        let options = SignOptions {
            nonce: nonce.as_ref(),
            ..SignOptions::new(NOW)
        };
        let signed =
            httpsig::sign(&self.view(), signature_key, key, &options).expect("sign request");
        for (name, value) in signed.headers() {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .field_lines(name)
            .next()
            .expect("header present")
            .to_owned()
    }
}

fn base_headers() -> Vec<(String, String)> {
    [
        ("Host", "resource.example"),
        ("User-Agent", "aauth-agent/0.1"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "gzip, br"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

/// Everything the benchmarks share: parties, keys, tokens and the verifier.
struct Fixture {
    delegate: SigningKey,
    agent_request_key: SigningKey,
    p256_delegate: SigningKey,
    directory: Directory,
    config: VerifierConfig,
    agent_token: String,
    auth_token: String,
    resource_token: String,
    resource: Origin,
    auth: Origin,
    agent: Origin,
}

impl Fixture {
    fn new() -> Self {
        let resource = origin(RESOURCE);
        let agent = origin(AGENT);
        let auth = origin(AUTH);
        let agent_server = ed25519();
        let auth_server = ed25519();
        let resource_key = ed25519();
        let delegate = ed25519();
        let agent_request_key = ed25519();
        let p256_delegate =
            SigningKey::generate(Algorithm::EcdsaP256Sha256).expect("P-256 key generation");

        let mut directory = Directory::default();
        for (owner, who, id, key) in [
            (KeyOwner::Agent, &agent, AGENT_KID, &agent_server),
            (
                KeyOwner::Agent,
                &agent,
                AGENT_REQUEST_KID,
                &agent_request_key,
            ),
            (KeyOwner::AuthServer, &auth, AUTH_KID, &auth_server),
            (KeyOwner::Resource, &resource, RESOURCE_KID, &resource_key),
        ] {
            directory
                .0
                .insert((owner, who.clone(), kid(id)), key.public_key().clone());
        }

        let agent_token =
            AgentTokenBuilder::new(agent.clone(), DELEGATE, delegate.public_key().clone())
                .build(now_secs())
                .expect("agent token claims")
                .sign(&agent_server, &kid(AGENT_KID))
                .expect("sign agent token");
        let scope = Scope::parse("photos.read photos.write").expect("scope");
        let auth_token = AuthTokenBuilder::new(
            auth.clone(),
            resource.clone(),
            agent.clone(),
            delegate.public_key().clone(),
        )
        .agent_delegate(DELEGATE)
        .scope(scope.clone())
        .build(now_secs())
        .expect("auth token claims")
        .sign(&auth_server, &kid(AUTH_KID))
        .expect("sign auth token");
        let resource_token = ResourceTokenBuilder::new(
            resource.clone(),
            auth.clone(),
            agent.clone(),
            delegate.public_key(),
            scope,
        )
        .build(now_secs())
        .expect("resource token claims")
        .sign(&resource_key, &kid(RESOURCE_KID))
        .expect("sign resource token");

        let mut config = VerifierConfig::new(resource.clone());
        config.trusted_auth_servers = vec![auth.clone()];
        config.http = VerifyPolicy::default();

        Self {
            delegate,
            agent_request_key,
            p256_delegate,
            directory,
            config,
            agent_token,
            auth_token,
            resource_token,
            resource,
            auth,
            agent,
        }
    }

    fn hwk_header(&self, key: &SigningKey) -> String {
        SignatureKeyField::hwk(Label::sig(), key.public_key())
            .to_header_value(Syntax::Sk0)
            .expect("hwk header")
    }

    fn jwks_uri_header(&self) -> String {
        SignatureKeyField::jwks_uri(
            Label::sig(),
            &self.agent,
            AAUTH_AGENT_WELL_KNOWN,
            kid(AGENT_REQUEST_KID),
        )
        .to_header_value(Syntax::Sk0)
        .expect("jwks_uri header")
    }

    fn jwt_header(&self, token: &str) -> String {
        SignatureKeyField::jwt(Label::sig(), token)
            .to_header_value(Syntax::Sk0)
            .expect("jwt header")
    }

    /// The `Signature-Key` value for each request benchmark, by name.
    fn schemes(&self) -> Vec<(&'static str, String, &SigningKey)> {
        vec![
            ("hwk", self.hwk_header(&self.delegate), &self.delegate),
            ("jwks_uri", self.jwks_uri_header(), &self.agent_request_key),
            (
                "jwt_agent_token",
                self.jwt_header(&self.agent_token),
                &self.delegate,
            ),
            (
                "jwt_auth_token",
                self.jwt_header(&self.auth_token),
                &self.delegate,
            ),
        ]
    }

    fn verify(&self, message: &Message) {
        let verified = verify_request(&message.view(), &self.config, &self.directory, NOW)
            .expect("the fixture request verifies");
        black_box(verified);
    }
}

fn raw(c: &mut Criterion, fx: &Fixture) {
    // A real signature base: that of the hwk GET below.
    let message = Message::get().signed(&fx.hwk_header(&fx.delegate), &fx.delegate, false);
    let prepared = httpsig::prepare(
        &message.view(),
        &Label::sig(),
        &VerifyPolicy::default(),
        NOW,
    )
    .expect("prepare");
    let base = prepared.signature_base().as_bytes().to_vec();
    let ed_sig = fx.delegate.sign(&base).expect("Ed25519 sign");
    let p256_sig = fx.p256_delegate.sign(&base).expect("P-256 sign");
    let ed_key = VerifyingKey::new(fx.delegate.public_key()).expect("Ed25519 key");
    let p256_key = VerifyingKey::new(fx.p256_delegate.public_key()).expect("P-256 key");

    let mut group = c.benchmark_group("raw");
    group.bench_function("ed25519_verify", |b| {
        b.iter(|| ed_key.verify(black_box(&base), black_box(&ed_sig)))
    });
    group.bench_function("ed25519_verify_unparsed", |b| {
        b.iter(|| {
            fx.delegate
                .public_key()
                .verify(black_box(&base), black_box(&ed_sig))
        })
    });
    group.bench_function("p256_verify", |b| {
        b.iter(|| p256_key.verify(black_box(&base), black_box(&p256_sig)))
    });
    group.finish();
}

fn requests(c: &mut Criterion, fx: &Fixture) {
    let mut group = c.benchmark_group("request");
    for (name, signature_key, key) in fx.schemes() {
        let get = Message::get().signed(&signature_key, key, false);
        fx.verify(&get);
        group.bench_function(name, |b| b.iter(|| fx.verify(black_box(&get))));
        let post = Message::post().signed(&signature_key, key, true);
        fx.verify(&post);
        group.bench_function(format!("{name}_post"), |b| {
            b.iter(|| fx.verify(black_box(&post)))
        });
    }
    // For information: the same hwk GET signed with ECDSA P-256.
    let p256 = Message::get().signed(&fx.hwk_header(&fx.p256_delegate), &fx.p256_delegate, false);
    fx.verify(&p256);
    group.bench_function("hwk_p256", |b| b.iter(|| fx.verify(black_box(&p256))));
    group.finish();
}

fn token_validation(c: &mut Criterion, fx: &Fixture) {
    let now = now_secs();
    let agent_keys = fx.directory.issuer_keys(KeyOwner::Agent);
    let auth_keys = fx.directory.issuer_keys(KeyOwner::AuthServer);
    let resource_keys = fx.directory.issuer_keys(KeyOwner::Resource);
    let agent_ctx = AgentTokenContext::new(now, &fx.resource);
    let trusted = [fx.auth.clone()];
    let auth_ctx = AuthTokenContext::new(now, &trusted, &fx.resource);
    let resource_ctx =
        ResourceTokenContext::new(now, &fx.auth, &fx.agent, fx.delegate.public_key());

    let mut group = c.benchmark_group("token");
    group.bench_function("agent", |b| {
        b.iter(|| {
            agent_token::validate(black_box(&fx.agent_token), &agent_ctx, &agent_keys)
                .expect("agent token validates")
        })
    });
    group.bench_function("resource", |b| {
        b.iter(|| {
            resource_token::validate(black_box(&fx.resource_token), &resource_ctx, &resource_keys)
                .expect("resource token validates")
        })
    });
    group.bench_function("auth", |b| {
        b.iter(|| {
            auth_token::validate(black_box(&fx.auth_token), &auth_ctx, &auth_keys)
                .expect("auth token validates")
        })
    });
    group.finish();
}

/// The pieces of `verify_request`, to see where the time beyond the
/// signature checks goes.
fn parts(c: &mut Criterion, fx: &Fixture) {
    let hwk_get = Message::get().signed(&fx.hwk_header(&fx.delegate), &fx.delegate, false);
    let hwk_post = Message::post().signed(&fx.hwk_header(&fx.delegate), &fx.delegate, true);
    let auth_get = Message::get().signed(&fx.jwt_header(&fx.auth_token), &fx.delegate, false);
    let hwk_value = hwk_get.header("signature-key");
    let jwt_value = fx.jwt_header(&fx.auth_token);
    let policy = VerifyPolicy::default();
    let label = Label::sig();

    let mut group = c.benchmark_group("parts");
    group.bench_function("signature_key_parse_hwk", |b| {
        b.iter(|| signature_key::parse(black_box(&hwk_value)).expect("parse"))
    });
    group.bench_function("signature_key_parse_jwt", |b| {
        b.iter(|| signature_key::parse(black_box(&jwt_value)).expect("parse"))
    });
    group.bench_function("prepare_get", |b| {
        b.iter(|| httpsig::prepare(&black_box(&hwk_get).view(), &label, &policy, NOW))
    });
    group.bench_function("prepare_post", |b| {
        b.iter(|| httpsig::prepare(&black_box(&hwk_post).view(), &label, &policy, NOW))
    });
    group.bench_function("prepare_jwt_auth_token_get", |b| {
        b.iter(|| httpsig::prepare(&black_box(&auth_get).view(), &label, &policy, NOW))
    });
    group.bench_function("token_peek", |b| {
        b.iter(|| tokens::peek(black_box(&fx.auth_token), OriginMode::Production))
    });
    group.bench_function("verifying_key_new_ed25519", |b| {
        b.iter(|| VerifyingKey::new(black_box(fx.delegate.public_key())))
    });
    group.bench_function("verifying_key_new_p256", |b| {
        b.iter(|| VerifyingKey::new(black_box(fx.p256_delegate.public_key())))
    });
    group.bench_function("thumbprint", |b| {
        b.iter(|| black_box(fx.delegate.public_key()).thumbprint())
    });
    group.finish();
}

fn signing(c: &mut Criterion, fx: &Fixture) {
    let signature_key = fx.hwk_header(&fx.delegate);
    let message = Message::get();
    let options = SignOptions::new(NOW);
    let mut group = c.benchmark_group("sign");
    group.bench_function("hwk_get", |b| {
        b.iter(|| {
            httpsig::sign(
                &black_box(&message).view(),
                &signature_key,
                &fx.delegate,
                &options,
            )
            .expect("sign")
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::new();
    raw(c, &fx);
    requests(c, &fx);
    token_validation(c, &fx);
    parts(c, &fx);
    signing(c, &fx);
}

criterion_group!(verify, benches);
criterion_main!(verify);
