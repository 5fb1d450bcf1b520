//! Multi-hop over real sockets (E§3.9, E§9.10, profile: P-AS-7, P-MD-4):
//! an agent calls R1's `GET /chain`; R1 calls R2's `/chain` as itself, reads
//! R2's challenge, exchanges the agent's auth token at a small in-process
//! auth server, retries with the new token, caches it, and returns R2's
//! answer inside its own.
//!
//! The auth server here implements only what R1's client side needs of
//! `request_type=exchange`: it verifies R1's signature (which proves R1
//! publishes itself as an agent, P-MD-4), checks the form has
//! `request_type=exchange`, a `resource_token` and an `upstream_token`, and
//! mints an auth token for R2 bound to R1's key with `act` = the upstream
//! agent. It validates neither token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failure here is a test failure"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aauth_http::client::{Identity, Outgoing, SigningClient};
use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::ServerKey;
use aauth_http::server::{ErrorResponse, RequestVerifier, read_body, unix_now};
use aauth_protocol::b64;
use aauth_protocol::error::Condition;
use aauth_protocol::httpsig::NonceRule;
use aauth_protocol::ids::{Kid, Origin, OriginMode, Scope};
use aauth_protocol::jwk::{Jwks, JwksKey};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::signature_key::Scheme;
use aauth_protocol::tokens::auth_token::{Act, AuthTokenBuilder};
use aauth_protocol::verify::VerifierConfig;
use aauth_resource::{AppState, Config, app};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use url::Url;

fn dev(text: &str) -> Origin {
    Origin::parse(text, OriginMode::Dev).unwrap()
}

async fn listen() -> (TcpListener, Origin) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, dev(&format!("http://127.0.0.1:{port}")))
}

/// The claims of a compact JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64::url_decode(payload).unwrap()).unwrap()
}

/// One exchange request as the auth server received it.
#[derive(Debug, Clone)]
struct Received {
    body: String,
    form: Vec<(String, String)>,
    caller: String,
    scheme: Scheme,
    nonce: bool,
}

impl Received {
    fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct AuthServer {
    origin: Origin,
    key: SigningKey,
    kid: Kid,
    verifier: RequestVerifier,
    received: Mutex<Vec<Received>>,
}

/// `POST /agent/token` with `request_type=exchange` only.
async fn token(State(server): State<Arc<AuthServer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, 64 * 1024).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    // P-AS-1: signed, with a Nonce.
    let verified = match server.verifier.verify(&parts, &body).await {
        Ok(verified) => verified,
        Err(rejected) => return rejected.into_error().into_response(),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let caller = verified.agent().unwrap().clone();
    let received = Received {
        body: String::from_utf8_lossy(&body).into_owned(),
        form,
        caller: caller.to_string(),
        scheme: verified.scheme(),
        nonce: verified.nonce().is_some(),
    };
    server.received.lock().unwrap().push(received.clone());
    let (Some("exchange"), Some(resource_token), Some(upstream)) = (
        received.get("request_type"),
        received.get("resource_token"),
        received.get("upstream_token"),
    ) else {
        return ErrorResponse::invalid_request("not an exchange").into_response();
    };
    let upstream = claims(upstream);
    let resource_token = claims(resource_token);
    if upstream["sub"] == "needs-consent" {
        return ErrorResponse::new(
            Condition::ExchangeNeedsInteraction,
            "this exchange needs the user's consent",
        )
        .into_response();
    }
    // P-AS-7: cnf = caller's key, agent = caller, sub copied, act = upstream agent.
    let mut builder = AuthTokenBuilder::new(
        server.origin.clone(),
        dev(resource_token["iss"].as_str().unwrap()),
        caller,
        verified.key().clone(),
    )
    .scope(Scope::parse(resource_token["scope"].as_str().unwrap()).unwrap())
    .act(Act {
        agent: upstream["agent"].as_str().unwrap().to_owned(),
        agent_delegate: upstream["agent_delegate"].as_str().map(str::to_owned),
        sub: None,
        act: None,
    })
    .lifetime_secs(60);
    if let Some(sub) = upstream["sub"].as_str() {
        builder = builder.subject(sub);
    }
    let now = i64::try_from(unix_now()).unwrap();
    let auth_token = builder
        .build(now)
        .unwrap()
        .sign(&server.key, &server.kid)
        .unwrap();
    axum::Json(json!({"auth_token": auth_token, "expires_in": 60})).into_response()
}

async fn auth_server() -> Arc<AuthServer> {
    let (listener, origin) = listen().await;
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let kid = Kid::new("as-1".to_owned()).unwrap();
    let o = origin.as_str().to_owned();
    let issuer = json!({
        "issuer": o,
        "jwks_uri": format!("{o}/jwks.json"),
        "agent_token_endpoint": format!("{o}/agent/token"),
        "agent_auth_endpoint": format!("{o}/agent/auth"),
        "agent_signing_algs_supported": ["ed25519"],
        "request_types_supported": ["exchange"],
    });
    let jwks = Jwks::new(vec![JwksKey {
        kid: kid.clone(),
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let mut config = VerifierConfig::new(origin.clone());
    config.origin_mode = OriginMode::Dev;
    // P-AS-1: signed, with a Nonce.
    config.http.require_nonce = NonceRule::Always;
    let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
    let server = Arc::new(AuthServer {
        origin,
        key,
        kid,
        verifier: RequestVerifier::new(config, discovery, true),
        received: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route(
            "/.well-known/aauth-issuer",
            get(move || async move { axum::Json(issuer) }),
        )
        .route("/jwks.json", get(move || async move { axum::Json(jwks) }))
        .route("/agent/token", post(token))
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    server
}

/// A resource trusting `auth`, calling `downstream` if given.
async fn resource(auth: &Origin, downstream: Option<&str>) -> Origin {
    resource_pinned(auth, downstream, auth).await
}

/// A resource trusting `auth`, calling `downstream` if given, whose
/// exchanges may only go to `pinned`.
async fn resource_pinned(auth: &Origin, downstream: Option<&str>, pinned: &Origin) -> Origin {
    let (listener, origin) = listen().await;
    let mut text = format!("auth_server = \"{auth}\"\n");
    if let Some(downstream) = downstream {
        text.push_str(&format!(
            "downstream = \"{downstream}\"\ndownstream_auth_server = \"{pinned}\"\n"
        ));
    }
    let settings = Config::from_toml(&text)
        .unwrap()
        .resolve(origin.clone(), true)
        .unwrap();
    let state = AppState::new(settings, ServerKey::generate().unwrap()).unwrap();
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    origin
}

/// The agent at the start of the chain: a delegate holding an auth token
/// for `aud` from `auth`.
struct Agent {
    origin: Origin,
    key: Arc<SigningKey>,
}

impl Agent {
    fn new() -> Self {
        Self {
            origin: dev("http://127.0.0.1:7100"),
            key: Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap()),
        }
    }

    fn token_for(&self, auth: &AuthServer, aud: &Origin, sub: &str) -> String {
        let now = i64::try_from(unix_now()).unwrap();
        AuthTokenBuilder::new(
            auth.origin.clone(),
            aud.clone(),
            self.origin.clone(),
            self.key.public_key().clone(),
        )
        .agent_delegate("phone")
        .scope(Scope::parse("chain.read").unwrap())
        .subject(sub)
        .lifetime_secs(600)
        .build(now)
        .unwrap()
        .sign(&auth.key, &auth.kid)
        .unwrap()
    }

    async fn call(&self, url: &str, auth_token: &str) -> (u16, Value) {
        let reply = self.reply(url, auth_token).await;
        (reply.status.as_u16(), reply.json().unwrap())
    }

    async fn reply(&self, url: &str, auth_token: &str) -> aauth_http::client::Reply {
        let identity = Identity::AuthToken {
            auth_token: auth_token.to_owned(),
            key: self.key.clone(),
        };
        SigningClient::new()
            .unwrap()
            .send(&identity, Outgoing::get(Url::parse(url).unwrap()))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn r1_exchanges_once_retries_with_the_new_token_and_nests_r2s_answer() {
    // E§3.9, E§9.10, profile: P-AS-7, P-MD-4
    let auth = auth_server().await;
    let r2 = resource(&auth.origin, None).await;
    let r2_chain = format!("{r2}/chain");
    let r1 = resource(&auth.origin, Some(&r2_chain)).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");

    let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 200, "{answer}");
    // The last hop tells the whole chain: R1 acts for the agent's delegate.
    assert_eq!(
        answer,
        json!({
            "resource": r1.as_str(),
            "caller": agent.origin.as_str(),
            "delegate": "phone",
            "sub": "alice",
            "act": null,
            "downstream": {
                "resource": r2.as_str(),
                "caller": r1.as_str(),
                "delegate": null,
                "sub": "alice",
                "act": {"agent": agent.origin.as_str(), "agent_delegate": "phone"},
                "downstream": null,
            },
        })
    );

    // The exchange, exactly as R1 sent it: signed as itself (jwks_uri on
    // its own origin, P-MD-4) with a Nonce (P-SIG-6), the form of P-AS-7.
    let received = auth.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let exchange = &received[0];
    assert_eq!(exchange.caller, r1.as_str());
    assert_eq!(exchange.scheme, Scheme::JwksUri);
    assert!(exchange.nonce);
    let names: Vec<&str> = exchange.form.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["request_type", "resource_token", "upstream_token"]);
    assert_eq!(exchange.get("request_type"), Some("exchange"));
    assert_eq!(exchange.get("upstream_token"), Some(upstream.as_str()));
    assert!(
        exchange
            .body
            .starts_with("request_type=exchange&resource_token=")
    );
    // The resource token is R2's, for R1 and the scope R2 asked for.
    let rt = claims(exchange.get("resource_token").unwrap());
    assert_eq!(rt["iss"], r2.as_str());
    assert_eq!(rt["aud"], auth.origin.as_str());
    assert_eq!(rt["agent"], r1.as_str());
    assert_eq!(rt["scope"], "chain.read");

    // The same upstream token again: the cached token serves, no exchange.
    let (status, again) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answer);
    assert_eq!(auth.received.lock().unwrap().len(), 1, "cached");

    // Another upstream token is another authorization: a new exchange.
    let bob = agent.token_for(&auth, &r1, "bob");
    let (status, other) = agent.call(&format!("{r1}/chain"), &bob).await;
    assert_eq!(status, 200, "{other}");
    assert_eq!(other["downstream"]["sub"], "bob");
    assert_eq!(auth.received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_exchange_needing_consent_sends_the_caller_to_r1s_interaction_page() {
    // profile: P-AS-7 — "if policy would need consent, 400
    // interaction_required, and the resource falls back to P-UI"; P-UI-1 —
    // 401 interaction_required with user_interaction on R1 itself.
    let auth = auth_server().await;
    let r2 = resource(&auth.origin, None).await;
    let r1 = resource(&auth.origin, Some(&format!("{r2}/chain"))).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "needs-consent");
    let reply = agent.reply(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(
        reply.error_code(),
        Some(aauth_protocol::error::ErrorCode::InteractionRequired)
    );
    let description = reply.error.as_ref().unwrap().to_string();
    assert!(
        description.contains(&format!("{r2}/chain")),
        "{description}"
    );
    let interaction = reply
        .agent_auth()
        .and_then(|c| c.user_interaction_url())
        .expect("a user_interaction challenge")
        .to_owned();
    assert!(
        interaction.starts_with(&format!("{r1}/interaction?session=")),
        "{interaction}"
    );
    // Each challenge opens its own session.
    let again = agent.reply(&format!("{r1}/chain"), &upstream).await;
    let second = again
        .agent_auth()
        .and_then(|c| c.user_interaction_url())
        .unwrap()
        .to_owned();
    assert_ne!(second, interaction);
}

#[tokio::test]
async fn an_unreachable_downstream_is_a_bad_gateway_naming_the_hop() {
    // A failing peer is a 502 whose description names the hop in this
    // resource's words, never the peer's address or answer.
    let auth = auth_server().await;
    let (closed, gone) = listen().await;
    drop(closed);
    let downstream = format!("{gone}/chain");
    let r1 = resource(&auth.origin, Some(&downstream)).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");
    let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"], "server_error");
    let description = answer["error_description"].as_str().unwrap();
    assert_eq!(
        description,
        "the downstream resource or its auth server could not be reached"
    );
    assert!(auth.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_downstream_that_does_not_answer_is_a_gateway_timeout() {
    let auth = auth_server().await;
    // Accepts connections and never answers.
    let (listener, silent) = listen().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let r1 = resource(&auth.origin, Some(&format!("{silent}/chain"))).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");
    let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error"], "temporarily_unavailable");
    let description = answer["error_description"].as_str().unwrap();
    assert!(
        description.contains("did not answer in time"),
        "{description}"
    );
    assert!(!description.contains("127.0.0.1"), "{description}");
}

#[tokio::test]
async fn the_callers_token_goes_only_to_the_configured_auth_server() {
    // A downstream that names another auth server in its challenge never
    // receives the caller's token: the exchange is refused before any request.
    let auth = auth_server().await;
    let r2 = resource(&auth.origin, None).await;
    let (_elsewhere_listener, elsewhere) = listen().await;
    let r1 = resource_pinned(&auth.origin, Some(&format!("{r2}/chain")), &elsewhere).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");
    let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 502, "{answer}");
    let description = answer["error_description"].as_str().unwrap();
    assert!(
        description.contains("named an auth server this resource cannot use"),
        "{description}"
    );
    assert!(
        auth.received.lock().unwrap().is_empty(),
        "no exchange was sent"
    );
}

#[tokio::test]
async fn a_resource_with_a_downstream_registers_its_interaction_callback() {
    // profile: P-MD-2, P-MD-4, P-UI-2 — the next hop sends the user back to
    // R1's callback, which must be in R1's agent metadata.
    let auth = auth_server().await;
    let r2 = resource(&auth.origin, None).await;
    let r1 = resource(&auth.origin, Some(&format!("{r2}/chain"))).await;
    let text = reqwest::get(format!("{r1}/.well-known/aauth-agent"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metadata: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        metadata["redirect_uris"],
        json!([format!("{r1}/interaction/callback")])
    );
    assert_eq!(metadata["name"], "AAuth notes");
    // An unknown session is an error page, never a redirect.
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{r1}/interaction?session=nope&return_url=http://127.0.0.1:1/callback"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.headers().get("location").is_none());
    assert!(page.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn a_downstream_asking_for_the_user_elsewhere_is_a_bad_gateway() {
    // profile: P-UI-3 — each resource only ever sends the user to its own
    // next hop, and adds the return_url itself (P-UI-2); any other
    // user_interaction is not passed on.
    let auth = auth_server().await;
    for (interaction, why) in [
        (
            "https://elsewhere.example/interaction?session=x".to_owned(),
            "not on the downstream's own origin",
        ),
        (
            "{downstream}/interaction?session=x&return_url=https://elsewhere.example/".to_owned(),
            "already carries a return_url",
        ),
    ] {
        let (listener, downstream) = listen().await;
        let interaction = interaction.replace("{downstream}", downstream.as_str());
        let auth_server = auth.origin.clone();
        // What the small auth server reads of a resource token (it checks
        // no signature).
        let resource_token = format!(
            "e30.{}.x",
            b64::url_encode(json!({"iss": downstream.as_str(), "scope": "chain.read"}).to_string())
        );
        let router = axum::Router::new().route(
            "/chain",
            get(move |headers: axum::http::HeaderMap| async move {
                let with_token = headers
                    .get("signature-key")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("jwt"));
                // As itself, R1 is asked for an auth token; with one, the
                // downstream asks for the user.
                let challenge = if with_token {
                    aauth_protocol::challenge::AgentAuth::user_interaction(&interaction)
                } else {
                    aauth_protocol::challenge::AgentAuth::auth_token(&resource_token, &auth_server)
                };
                ErrorResponse::new(Condition::InteractionRequired, "the user is needed")
                    .with_challenge(challenge.unwrap())
                    .into_response()
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        let r1 = resource(&auth.origin, Some(&format!("{downstream}/chain"))).await;
        let agent = Agent::new();
        let upstream = agent.token_for(&auth, &r1, "alice");
        let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
        assert_eq!(status, 502, "{answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(why), "{description}");
        assert!(!description.contains("elsewhere.example"), "{description}");
    }
}

#[tokio::test]
async fn a_need_for_the_user_answered_to_r1_itself_is_not_passed_on() {
    // profile: P-UI-1 — a session is bound to a caller; a downstream that
    // asks for the user before R1 presents any caller's token gets no
    // caller's user: R1 needs a resource token challenge there.
    let auth = auth_server().await;
    let (listener, downstream) = listen().await;
    let interaction = format!("{downstream}/interaction?session=x");
    let router = axum::Router::new().route(
        "/chain",
        get(move || async move {
            ErrorResponse::new(Condition::InteractionRequired, "the user is needed")
                .with_challenge(
                    aauth_protocol::challenge::AgentAuth::user_interaction(&interaction).unwrap(),
                )
                .into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let r1 = resource(&auth.origin, Some(&format!("{downstream}/chain"))).await;
    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");
    let reply = agent.reply(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.agent_auth().is_none());
    assert!(
        reply.text().contains("without a resource token challenge"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn downstream_calls_can_be_signed_the_way_the_early_python_peer_reads() {
    // profile: P-SIG-7 — `downstream_compat = "py-early"`: label sig1, the
    // parenthesised Signature-Key, an unpadded base64url Signature.
    let auth = auth_server().await;
    let seen = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
    let (listener, downstream) = listen().await;
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/chain",
        get(move |headers: axum::http::HeaderMap| async move {
            let text = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            record.lock().unwrap().push((
                text("signature-key"),
                text("signature-input"),
                text("signature"),
            ));
            axum::Json(json!({"downstream": "answered"}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let (r1_listener, r1) = listen().await;
    let text = format!(
        "auth_server = \"{}\"\ndownstream = \"{downstream}/chain\"\n\
         downstream_auth_server = \"{}\"\ndownstream_compat = \"py-early\"\n",
        auth.origin, auth.origin
    );
    let settings = Config::from_toml(&text)
        .unwrap()
        .resolve(r1.clone(), true)
        .unwrap();
    let state = AppState::new(settings, ServerKey::generate().unwrap()).unwrap();
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(r1_listener, service).await });

    let agent = Agent::new();
    let upstream = agent.token_for(&auth, &r1, "alice");
    let (status, answer) = agent.call(&format!("{r1}/chain"), &upstream).await;
    assert_eq!(status, 200, "{answer}");
    let seen = seen.lock().unwrap();
    let (key, input, signature) = seen.first().unwrap();
    assert!(key.starts_with("sig1=(scheme=jwks "), "{key}");
    assert!(input.starts_with("sig1=("), "{input}");
    let value = signature
        .strip_prefix("sig1=:")
        .and_then(|v| v.strip_suffix(':'))
        .unwrap();
    assert!(!value.contains(['=', '+', '/']), "{value}");
}
