//! What the end-to-end tests share: starting a world, signing requests as
//! each kind of caller, crafting bad requests, and asserting the P-ERR-1
//! row an answer belongs to.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aauth_agent::{
    AgentError, CallbackListener, ConsentHandler, DelegateState, consent::PresentFuture,
};
use aauth_e2e::user::{Decision, PlayedUser, form_action, hidden_fields};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options, World};
use aauth_http::client::{Identity, Outgoing, Reply, SignedRequest, SigningClient};
use aauth_http::server::unix_now;
use aauth_protocol::b64;
use aauth_protocol::challenge::Level;
use aauth_protocol::httpsig::{self, SignOptions};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::tokens::agent_token::AgentTokenBuilder;
use http::{HeaderValue, Method};
use serde_json::Value;
use url::Url;

/// Starts the three servers with `options`; the run's directory is kept
/// when the test panics (see [`Run`]).
pub fn start(options: &Options) -> World {
    World::start(options).expect("the three servers start")
}

/// A world with the defaults.
pub fn world() -> World {
    start(&Options::default())
}

/// `base` + `path` as a URL.
pub fn at(base: &str, path: &str) -> Url {
    Url::parse(&format!("{base}{path}")).expect("a URL")
}

/// The auth server's token endpoint.
pub fn token_endpoint(world: &World) -> Url {
    at(world.auth_server.url(), "/agent/token")
}

/// A signing client.
pub fn client() -> SigningClient {
    SigningClient::new().expect("a client")
}

/// A plain HTTP client that follows no redirects.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("a client")
}

/// A fresh Ed25519 key.
pub fn new_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(Algorithm::Ed25519).expect("a key"))
}

/// Signing as the agent server itself (`jwks_uri`, E§3.2).
pub fn server_identity(world: &World) -> Identity {
    let key = world.agent_server_key().expect("the agent server's key");
    Identity::AgentServer {
        agent: world.agent_origin().expect("the agent origin"),
        kid: key.kid,
        key: Arc::new(key.key),
    }
}

/// Signing as an enrolled delegate (`jwt` agent token).
pub fn delegate_identity(delegate: &DelegateState) -> Identity {
    Identity::Delegate {
        agent_token: delegate.record.agent_token.expose().to_owned(),
        key: delegate.key.clone(),
    }
}

/// Enrolls a delegate whose state lives in `name`.
pub async fn enroll(world: &World, name: &str) -> DelegateState {
    world.enroll_delegate(name).await.expect("enrollment")
}

/// An agent token for `key`, signed by the agent server's real key, issued
/// `age` seconds ago and valid for `lifetime` seconds.
pub fn agent_token_issued(world: &World, key: &SigningKey, age: u64, lifetime: u32) -> String {
    let server = world.agent_server_key().expect("the agent server's key");
    let now = i64::try_from(unix_now() - age).expect("a time");
    AgentTokenBuilder::new(
        world.agent_origin().expect("origin"),
        "delegate-crafted",
        key.public_key().clone(),
    )
    .lifetime_secs(lifetime)
    .build(now)
    .expect("claims")
    .sign(&server.key, &server.kid)
    .expect("a token")
}

/// The same agent token, but signed by `forger` under the agent server's
/// `kid`.
pub fn forged_agent_token(world: &World, key: &SigningKey) -> String {
    let server = world.agent_server_key().expect("the agent server's key");
    let forger = SigningKey::generate(Algorithm::Ed25519).expect("a key");
    let now = i64::try_from(unix_now()).expect("a time");
    AgentTokenBuilder::new(
        world.agent_origin().expect("origin"),
        "delegate-forged",
        key.public_key().clone(),
    )
    .build(now)
    .expect("claims")
    .sign(&forger, &server.kid)
    .expect("a token")
}

/// The claims of a compact JWS, unverified.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&b64::url_decode(payload).expect("base64url")).expect("JSON claims")
}

/// `jwt` with its payload changed by `change`, the signature kept.
pub fn tamper_payload(jwt: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut payload = claims(jwt);
    change(&mut payload);
    let payload = b64::url_encode(serde_json::to_vec(&payload).expect("JSON"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// Sends a form POST to the token endpoint signed as `identity`.
pub async fn token_request(world: &World, identity: &Identity, form: &[(&str, &str)]) -> Reply {
    client()
        .send(identity, Outgoing::post_form(token_endpoint(world), form))
        .await
        .expect("the token endpoint answers")
}

/// A resource token for `scope` bound to `identity` (E§9.2.5).
pub async fn resource_token(world: &World, identity: &Identity, scope: &str) -> String {
    let reply = client()
        .send(
            identity,
            Outgoing::post_form(
                at(world.resource.url(), "/resource/token"),
                &[("scope", scope)],
            ),
        )
        .await
        .expect("the resource answers");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().expect("JSON");
    body["resource_token"]
        .as_str()
        .expect("a resource token")
        .to_owned()
}

/// The server agent's direct grant (the auth server's autonomous policy):
/// `(auth_token, refresh_token)` for `data.read` at the resource.
pub async fn direct_grant(world: &World) -> (String, String) {
    let identity = server_identity(world);
    let token = resource_token(world, &identity, "data.read").await;
    let reply = token_request(
        world,
        &identity,
        &[("request_type", "auth"), ("resource_token", &token)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().expect("JSON");
    (
        body["auth_token"].as_str().expect("auth_token").to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

/// Alice, approving or denying, reporting nothing.
pub fn alice(decision: Decision) -> PlayedUser {
    PlayedUser::new(ALICE, ALICE_PASSWORD, decision, Arc::new(|_| {}))
}

/// Starts a consent by hand (E§9.3): `request_type=auth` with `form` plus
/// the redirect URI of a new loopback listener; returns the auth server's
/// consent URL (with `state=st4te`) and the listener.
pub async fn consent_link(
    world: &World,
    identity: &Identity,
    form: &[(&str, &str)],
) -> (Url, CallbackListener) {
    let listener = CallbackListener::bind().await.expect("a callback listener");
    let redirect_uri = listener.redirect_uri().to_string();
    let mut fields = vec![("request_type", "auth"), ("redirect_uri", &redirect_uri)];
    fields.extend_from_slice(form);
    let reply = token_request(world, identity, &fields).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().expect("JSON");
    let request_token = body["request_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a request_token, got {body}"));
    let mut url = at(world.auth_server.url(), "/agent/auth");
    url.query_pairs_mut()
        .append_pair("request_token", request_token)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", "st4te");
    (url, listener)
}

/// Runs the consent round trip by hand (E§9.3, E§9.5): `request_type=auth`
/// with `form` plus a loopback `redirect_uri`, Alice decides, and the
/// callback's query comes back, with the `redirect_uri` used.
pub async fn consent_round_trip(
    world: &World,
    identity: &Identity,
    form: &[(&str, &str)],
    decision: Decision,
) -> (HashMap<String, String>, String) {
    let (url, listener) = consent_link(world, identity, form).await;
    let redirect_uri = listener.redirect_uri().to_string();
    alice(decision)
        .present(&url)
        .await
        .expect("Alice gets through the pages");
    let query = listener
        .wait(Duration::from_secs(10))
        .await
        .expect("the callback");
    assert_eq!(query.get("state").map(String::as_str), Some("st4te"));
    (query, redirect_uri)
}

/// A consent round trip that Alice approves: the code and the redirect URI.
pub async fn approved_code(
    world: &World,
    identity: &Identity,
    form: &[(&str, &str)],
) -> (String, String) {
    let (query, redirect_uri) = consent_round_trip(world, identity, form, Decision::Approve).await;
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("a code in the callback: {query:?}"))
        .clone();
    (code, redirect_uri)
}

/// Asserts `reply` is the P-ERR-1 row `status` / `error`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(
        (
            reply.status.as_u16(),
            reply.error.as_ref().map(|e| e.error.as_str())
        ),
        (status, Some(error)),
        "body: {}",
        reply.text()
    );
}

/// Asserts the answer carries an `Agent-Auth` challenge for `level`.
#[track_caller]
pub fn assert_challenge(reply: &Reply, level: Level) {
    let challenge = reply
        .agent_auth()
        .unwrap_or_else(|| panic!("an Agent-Auth challenge, got {:?}", reply.challenge));
    assert_eq!(challenge.level(), level, "{}", challenge.to_header_value());
}

/// Asserts the answer carries no `Agent-Auth` header.
#[track_caller]
pub fn assert_no_challenge(reply: &Reply) {
    assert!(
        reply.challenge.is_none(),
        "no Agent-Auth expected: {:?}",
        reply.headers.get("agent-auth")
    );
}

/// Asserts the challenge carries no resource token (P-ERR-4).
#[track_caller]
pub fn assert_no_resource_token(reply: &Reply) {
    if let Some(challenge) = reply.agent_auth() {
        assert!(
            challenge.resource_token().is_none(),
            "a failed signature never earns a resource token (P-ERR-4): {}",
            challenge.to_header_value()
        );
    }
}

/// Signs `request` as `identity` with `created` set to `created` (the
/// client always uses the clock).
pub fn sign_created(identity: &Identity, request: Outgoing, created: u64) -> SignedRequest {
    let authority = aauth_http::client::authority(&request.url).expect("authority");
    let target = aauth_http::client::target(&request.url);
    let nonce = if request.method == Method::GET {
        None
    } else {
        Some(httpsig::Nonce::generate().expect("a nonce"))
    };
    let mut plain: Vec<(String, String)> = Vec::new();
    if let Some(ct) = &request.content_type {
        plain.push(("content-type".to_owned(), ct.clone()));
    }
    let signature_key = identity
        .signature_key()
        .to_header_value(aauth_protocol::signature_key::Syntax::Sk0)
        .expect("Signature-Key");
    let view = httpsig::Request {
        method: request.method.as_str(),
        authority: &authority,
        target: &target,
        headers: &plain,
        body: Some(&request.body),
    };
    let mut options = SignOptions::new(created);
    options.nonce = nonce.as_ref();
    let signed = httpsig::sign(&view, &signature_key, identity.key(), &options).expect("signed");
    let mut headers = http::HeaderMap::new();
    for (name, value) in plain
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(signed.headers())
    {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
            HeaderValue::from_str(value).expect("a value"),
        );
    }
    SignedRequest {
        method: request.method,
        url: request.url,
        headers,
        body: request.body,
        nonce,
    }
}

/// Flips one bit of the signature bytes in the `Signature` header.
pub fn flip_signature(signed: &mut SignedRequest) {
    let value = signed.headers["signature"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let (label, rest) = value.split_once('=').expect("label=");
    let inner = rest.trim_matches(':');
    let mut bytes = b64::lenient_decode(inner).expect("base64");
    bytes[0] ^= 0x01;
    let flipped = format!("{label}=:{}:", b64::std_encode(bytes));
    signed.headers.insert(
        "signature",
        HeaderValue::from_str(&flipped).expect("a value"),
    );
}

/// Replaces header `name` of `signed`.
pub fn set_header(signed: &mut SignedRequest, name: &'static str, value: &str) {
    signed.headers.insert(
        http::HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("a value"),
    );
}

/// Sends a signed request.
pub async fn send(signed: SignedRequest) -> Reply {
    client().send_signed(signed).await.expect("an answer")
}

/// A consent handler that counts how often the user was sent somewhere,
/// then plays Alice.
#[derive(Debug, Clone)]
pub struct Counting {
    pub user: PlayedUser,
    pub presented: Arc<Mutex<usize>>,
}

impl Counting {
    pub fn new(decision: Decision) -> Self {
        Self {
            user: alice(decision),
            presented: Arc::default(),
        }
    }

    pub fn count(&self) -> usize {
        *self.presented.lock().unwrap()
    }
}

impl ConsentHandler for Counting {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        *self.presented.lock().unwrap() += 1;
        self.user.present(url)
    }
}

/// Collects the agent's step lines.
#[derive(Debug, Clone, Default)]
pub struct Steps(pub Arc<Mutex<Vec<String>>>);

impl Steps {
    pub fn hook(&self) -> aauth_agent::StepHook {
        let lines = self.0.clone();
        Arc::new(move |line: &str| lines.lock().unwrap().push(line.to_owned()))
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Unwraps an agent result, showing the error.
#[track_caller]
pub fn ok<T>(result: Result<T, AgentError>) -> T {
    result.unwrap_or_else(|e| panic!("agent: {e}"))
}

/// `GET /whoami` signed as `identity`: the JSON of a 200.
pub async fn whoami(world: &World, identity: &Identity) -> Value {
    let reply = client()
        .send(identity, Outgoing::get(at(world.resource.url(), "/whoami")))
        .await
        .expect("an answer");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().unwrap()
}

/// An auth token Alice approved for `identity` at the resource, with
/// `scope`: `(auth_token, refresh_token)`.
pub async fn user_grant(world: &World, identity: &Identity, scope: &str) -> (String, String) {
    let token = resource_token(world, identity, scope).await;
    let (code, redirect_uri) = approved_code(world, identity, &[("resource_token", &token)]).await;
    let reply = token_request(
        world,
        identity,
        &[
            ("request_type", "code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().expect("JSON");
    (
        body["auth_token"].as_str().expect("auth_token").to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

/// A well-formed renewal of `delegate` to a fresh key (P-DEL-2), unsigned.
pub fn renewal(world: &World) -> Outgoing {
    let new_key = SigningKey::generate(Algorithm::Ed25519).expect("a key");
    let nonce = httpsig::Nonce::generate().expect("a nonce");
    let proof =
        aauth_protocol::jose::sign_key_proof(&new_key, nonce.as_str().as_bytes()).expect("a proof");
    let jwk = new_key.public_key().to_json_value().to_string();
    Outgoing::post_form(
        at(world.agent_server.url(), "/delegate/renew"),
        &[("new_jwk", &jwk), ("new_key_proof", &proof)],
    )
    .nonce(nonce)
}

/// An enrollment request with `code` (P-DEL-1), unsigned.
pub fn enrollment(world: &World, code: &str) -> Outgoing {
    Outgoing::post_form(
        at(world.agent_server.url(), "/delegate/enroll"),
        &[("code", code)],
    )
}

/// A browser session at the auth server, by hand: one cookie, forms
/// submitted as read from the page, no redirect followed.
pub struct FormSession {
    pub http: reqwest::Client,
    pub cookie: String,
}

/// One answer to a form or a page.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl FormSession {
    /// Opens `link` (the login page) and signs in as Alice.
    pub async fn sign_in(link: &Url) -> Self {
        let mut session = Self {
            http: plain(),
            cookie: String::new(),
        };
        let page = session.get(link).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let done = session
            .submit(
                link,
                &page.body,
                &[("username", ALICE), ("password", ALICE_PASSWORD)],
            )
            .await;
        assert_eq!(done.status, 303, "signed in: {}", done.body);
        session
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            if let Some(pair) = text.split(';').next().filter(|p| !p.ends_with('=')) {
                self.cookie = pair.to_owned();
            }
        }
    }

    async fn answer(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .expect("the auth server answers");
        self.keep_cookie(&response);
        Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, url: &Url) -> Answer {
        let request = self.http.get(url.clone());
        self.answer(request).await
    }

    /// The form of `html` (on the page at `base`) with `extra` fields.
    pub fn form(base: &Url, html: &str, extra: &[(&str, &str)]) -> (Url, Vec<(String, String)>) {
        let action = base.join(&form_action(html).expect("a form")).unwrap();
        let mut fields = hidden_fields(html);
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        (action, fields)
    }

    pub async fn submit(&mut self, base: &Url, html: &str, extra: &[(&str, &str)]) -> Answer {
        let (action, fields) = Self::form(base, html, extra);
        let request = self.http.post(action).form(&fields);
        self.answer(request).await
    }
}
