//! An auth server under test. The suite is its agent server and also a
//! resource of its own, so that it can mint resource tokens wrong in one
//! way each; consent goes through the target's pages (`--user`,
//! `--password`) or through a person the suite prints the URL for.

use std::collections::HashMap;

use aauth_http::client::Identity;
use aauth_protocol::challenge::Level;
use serde_json::{Value, json};
use url::Url;

use super::{
    Signer, all_of, at, claim, fetch_json, fetch_jwks, is_key, jwks_is_public, key, signed,
    url_member, verify_token,
};
use crate::browser;
use aauth_http::server::unix_now;

use crate::craft::fresh_nonce;
use crate::host::RESOURCE_KID;
use crate::jws;
use crate::profile::AuthServerTarget;
use crate::run::{Expect, Run, case, hostile};
use crate::wire::{Seen, Sent};

/// Largest form an auth server must take (P-ERR-1: 64 KiB).
const FORM_LIMIT: usize = 64 * 1024;

/// An auth token obtained, and how to refresh it.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub auth_token: String,
    pub refresh_token: Option<String>,
    pub scope: String,
    pub token_endpoint: Url,
}

/// The endpoints of an auth server's metadata.
struct Endpoints {
    issuer: String,
    token: Url,
    consent: Url,
    jwks: Url,
}

async fn endpoints(run: &Run, auth_server: &Url) -> Result<Endpoints, String> {
    let document = fetch_json(run, &at(auth_server, "/.well-known/aauth-issuer")).await?;
    let token = url_member(&document, "agent_token_endpoint")?;
    let consent = url_member(&document, "agent_auth_endpoint")?;
    let jwks = url_member(&document, "jwks_uri")?;
    for url in [&token, &consent, &jwks] {
        run.wire.allow_same_host(url, auth_server);
    }
    Ok(Endpoints {
        issuer: claim(&document, "issuer").unwrap_or_default().to_owned(),
        token,
        consent,
        jwks,
    })
}

/// A form POST to the token endpoint signed as `identity`.
async fn token_call(
    run: &Run,
    endpoint: &Url,
    identity: &Identity,
    pairs: &[(&str, &str)],
) -> Result<Seen, String> {
    let (sent, _) = signed(&Signer::of(run).form(identity, endpoint.clone(), pairs));
    run.wire.send(&sent).await.map_err(|e| e.to_string())
}

fn member(seen: &Seen, name: &str) -> Option<String> {
    seen.string(name).map(str::to_owned)
}

/// Sends the user to the consent page and returns the redirect's query.
async fn consent(
    run: &Run,
    endpoint: &Url,
    request_token: &str,
    approve: bool,
) -> Result<HashMap<String, String>, String> {
    let state = fresh_nonce();
    let redirect_uri = run.host.redirect_uri();
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("request_token", request_token)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state);
    let query = match (&run.settings.user, &run.settings.password) {
        (Some(user), Some(password)) => {
            let back =
                browser::consent(&run.wire, &url, user, password, approve, &redirect_uri).await?;
            back.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
        _ => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "\nconsent needed: open this URL, sign in and {} (waiting {} s):\n  {url}\n",
                    if approve { "approve" } else { "deny" },
                    run.settings.consent_wait.as_secs()
                );
            }
            run.host
                .wait_callback(&state, run.settings.consent_wait)
                .await
                .ok_or("no one came back to the redirect URI in time")?
        }
    };
    if query.get("state") != Some(&state) {
        return Err("the redirect does not carry the request's state".to_owned());
    }
    Ok(query)
}

/// E§9.3–9.6: an auth token for `resource_token`, through consent if the
/// auth server asks for it.
pub(super) async fn authorize(
    run: &Run,
    auth_server: &Url,
    resource_token: &str,
    delegate: &Identity,
) -> Result<Grant, String> {
    let ends = endpoints(run, auth_server).await?;
    let redirect_uri = run.host.redirect_uri();
    let answer = token_call(
        run,
        &ends.token,
        delegate,
        &[
            ("request_type", "auth"),
            ("resource_token", resource_token),
            ("redirect_uri", &redirect_uri),
        ],
    )
    .await?;
    if answer.status != 200 {
        return Err(format!("request_type=auth: {}", answer.describe()));
    }
    let answer = if member(&answer, "auth_token").is_some() {
        answer
    } else {
        let request_token = member(&answer, "request_token")
            .ok_or("request_type=auth: neither auth_token nor request_token")?;
        let query = consent(run, &ends.consent, &request_token, true).await?;
        let code = query
            .get("code")
            .ok_or_else(|| format!("the consent redirect carries no code: {query:?}"))?;
        let answer = token_call(
            run,
            &ends.token,
            delegate,
            &[
                ("request_type", "code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
            ],
        )
        .await?;
        if answer.status != 200 {
            return Err(format!("request_type=code: {}", answer.describe()));
        }
        answer
    };
    Ok(Grant {
        auth_token: member(&answer, "auth_token").ok_or("no auth_token in the answer")?,
        refresh_token: member(&answer, "refresh_token"),
        scope: jws::claims(&member(&answer, "auth_token").unwrap_or_default())
            .and_then(|c| claim(&c, "scope").map(str::to_owned))
            .unwrap_or_default(),
        token_endpoint: ends.token,
    })
}

/// E§9.7: a new auth token for `grant`'s refresh token.
pub(super) async fn refresh(
    run: &Run,
    grant: &Grant,
    delegate: &Identity,
) -> Result<Grant, String> {
    let refresh_token = grant.refresh_token.as_deref().ok_or("no refresh token")?;
    let answer = token_call(
        run,
        &grant.token_endpoint,
        delegate,
        &[
            ("request_type", "refresh"),
            ("refresh_token", refresh_token),
        ],
    )
    .await?;
    if answer.status != 200 {
        return Err(format!("request_type=refresh: {}", answer.describe()));
    }
    Ok(Grant {
        auth_token: member(&answer, "auth_token").ok_or("no auth_token in the answer")?,
        refresh_token: member(&answer, "refresh_token").or_else(|| grant.refresh_token.clone()),
        ..grant.clone()
    })
}

/// Runs every auth server check.
pub(super) async fn run(run: &mut Run, target: &AuthServerTarget) {
    let s = Signer::of(run);
    run.wire.allow(&target.url);
    let metadata_url = at(&target.url, "/.well-known/aauth-issuer");
    let origin = target.url.origin().ascii_serialization();
    let document = fetch_json(run, &metadata_url).await;
    let ends = endpoints(run, &target.url).await;
    let described = run.verdict(
        case(
            "auth-server.discovery.metadata",
            "E§8.2",
            "metadata names the issuer, its JWKS and both endpoints",
        ),
        format!("GET {metadata_url}"),
        format!("issuer = {origin}; jwks_uri, agent_token_endpoint, agent_auth_endpoint"),
        document.and_then(|d| {
            ends.as_ref().map_err(Clone::clone)?;
            all_of(
                &[(
                    "issuer is not the origin",
                    claim(&d, "issuer") == Some(&origin),
                )],
                format!("issuer {:?}", claim(&d, "issuer").unwrap_or_default()),
            )
        }),
    );
    let Ok(ends) = ends else { return };
    if !described {
        return;
    }
    let jwks = fetch_json(run, &ends.jwks).await;
    run.verdict(
        case(
            "auth-server.discovery.jwks",
            "E§8.2",
            "the JWKS holds public keys only",
        ),
        format!("GET {}", ends.jwks),
        "a JWKS with at least one key and no private members",
        jwks.and_then(|d| jwks_is_public(&d)),
    );

    let delegate = run.host.delegate("delegate-as");
    let scope = target.scope.clone();
    let (resource_kid, resource_key) = run.host.resource_key();
    let resource_token = |claims: &Value| {
        jws::sign(
            &resource_key,
            &jws::header("resource+jwt", resource_kid.as_str()),
            claims,
        )
    };
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let suite = run.host.origin().as_str().to_owned();
    let good_claims = |agent_key: &aauth_protocol::keys::SigningKey| {
        json!({
            "iss": suite,
            "aud": ends.issuer,
            "agent": suite,
            "agent_jkt": agent_key.public_key().thumbprint().as_str(),
            "scope": scope,
            "iat": now,
            "exp": now + 300,
            "jti": fresh_nonce(),
        })
    };
    let good = good_claims(delegate.key());
    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        if let Some(o) = c.as_object_mut() {
            o.insert(name.to_owned(), value);
        }
        c
    };
    let redirect_uri = run.host.redirect_uri();
    let token_url = ends.token.clone();
    let auth_form = |rt: &str| -> Vec<(String, String)> {
        vec![
            ("request_type".into(), "auth".into()),
            ("resource_token".into(), rt.to_owned()),
            ("redirect_uri".into(), redirect_uri.clone()),
        ]
    };

    // Who may call.
    let valid_rt = resource_token(&good);
    let mut unsigned = Sent::new("POST", token_url.clone());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(auth_form(&valid_rt))
        .finish();
    unsigned.set_header("Content-Type", "application/x-www-form-urlencoded");
    unsigned.body = body.into_bytes();
    run.exchange(
        case(
            "auth-server.caller.unsigned",
            "P-ERR-1",
            "an unsigned token request is asked to identify",
        ),
        &unsigned,
        Expect::unauthorized("invalid_signature", Level::Identified),
        None,
    )
    .await;
    let hwk = Identity::Hwk(delegate.key().clone());
    let pairs = auth_form(&valid_rt);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    run.send(
        case(
            "auth-server.caller.pseudonymous",
            "P-ERR-1",
            "a pseudonymous caller is asked to identify",
        ),
        &s.form(&hwk, token_url.clone(), &refs),
        Expect::unauthorized("insufficient_auth_level", Level::Identified),
    )
    .await;
    let (sent, base) = signed(&s.form(
        &run.host.delegate("delegate-as-2"),
        token_url.clone(),
        &refs,
    ));
    let mut no_nonce = sent.clone();
    no_nonce.remove_header("Nonce");
    run.exchange(
        hostile(
            "auth-server.caller.no-nonce",
            "P-SIG-6",
            "a token request without its Nonce",
        ),
        &no_nonce,
        Expect::unauthorized("invalid_signature", Level::Identified),
        Some(&base),
    )
    .await;

    // The request itself.
    let bad_request = |error| Expect::refused(400, error);
    let encode = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let request_cases = vec![
        (
            "request.unknown-type",
            "an unknown request_type",
            encode(&[("request_type", "conformance")]),
            "unsupported_request_type",
        ),
        (
            "request.missing-type",
            "no request_type",
            encode(&[("resource_token", &valid_rt)]),
            "invalid_request",
        ),
        (
            "request.duplicate-type",
            "request_type twice",
            encode(&[
                ("request_type", "auth"),
                ("request_type", "auth"),
                ("resource_token", &valid_rt),
            ]),
            "invalid_request",
        ),
        (
            "auth.no-resource-token",
            "request_type=auth without a resource token",
            encode(&[("request_type", "auth")]),
            "invalid_request",
        ),
        (
            "auth.garbage-resource-token",
            "a resource token that is no JWT",
            encode(&[("request_type", "auth"), ("resource_token", "garbage")]),
            "invalid_resource_token",
        ),
    ];
    for (name, title, body, error) in request_cases {
        let (sent, base) = signed(&s.draft(
            &delegate,
            "POST",
            token_url.clone(),
            Some((body.as_bytes(), "application/x-www-form-urlencoded")),
        ));
        run.exchange(
            hostile(format!("auth-server.{name}"), "P-ERR-1", title),
            &sent,
            bad_request(error),
            Some(&base),
        )
        .await;
    }
    let malformed = s.draft(
        &delegate,
        "POST",
        token_url.clone(),
        Some((b"{\"request_type\":\"auth\"}", "application/json")),
    );
    run.send(
        hostile(
            "auth-server.request.not-a-form",
            "P-ERR-1",
            "a JSON body where a form belongs",
        ),
        &malformed,
        bad_request("invalid_request"),
    )
    .await;
    let big = "a".repeat(FORM_LIMIT + 1024);
    run.send(
        hostile(
            "auth-server.request.oversized",
            "P-ERR-1",
            "a form over 64 KiB",
        ),
        &s.form(
            &delegate,
            token_url.clone(),
            &[("request_type", "auth"), ("resource_token", &big)],
        ),
        Expect::refused(413, "invalid_request"),
    )
    .await;

    // Resource tokens wrong in one way each.
    let other = key();
    let header = jws::header("resource+jwt", resource_kid.as_str());
    let rt_cases: Vec<(&str, &str, String)> = vec![
        (
            "alg-none",
            "alg none",
            jws::unsecured("resource+jwt", RESOURCE_KID, &good),
        ),
        (
            "hs256",
            "HS256 keyed with the resource's public key",
            jws::hs256_with_public_key(
                "resource+jwt",
                RESOURCE_KID,
                resource_key.public_key(),
                &good,
            ),
        ),
        (
            "forged",
            "signed by another key under the resource's kid",
            jws::sign(&other, &header, &good),
        ),
        (
            "tampered",
            "scope changed after signing",
            jws::tampered(&valid_rt, "scope", json!("conformance.admin")),
        ),
        (
            "typ-agent",
            "typ agent+jwt",
            jws::sign(
                &resource_key,
                &jws::header("agent+jwt", RESOURCE_KID),
                &good,
            ),
        ),
        (
            "typ-auth",
            "typ auth+jwt",
            jws::sign(&resource_key, &jws::header("auth+jwt", RESOURCE_KID), &good),
        ),
        (
            "unknown-kid",
            "a kid the resource's JWKS lacks",
            jws::sign(
                &resource_key,
                &jws::header("resource+jwt", "conformance-none"),
                &good,
            ),
        ),
        (
            "expired",
            "expired a minute ago",
            resource_token(&with("exp", json!(now - 60))),
        ),
        (
            "aud-other",
            "aud another auth server",
            resource_token(&with("aud", json!("https://other-auth.example"))),
        ),
        (
            "agent-other",
            "minted for another agent",
            resource_token(&with("agent", json!("http://127.0.0.1:1"))),
        ),
        (
            "jkt-other",
            "agent_jkt of another key",
            resource_token(&with(
                "agent_jkt",
                json!(other.public_key().thumbprint().as_str()),
            )),
        ),
        (
            "no-agent-jkt",
            "no agent_jkt",
            resource_token(&{
                let mut c = good.clone();
                if let Some(o) = c.as_object_mut() {
                    o.remove("agent_jkt");
                }
                c
            }),
        ),
        (
            "iss-unreachable",
            "iss a resource that does not answer",
            resource_token(&with("iss", json!("http://127.0.0.1:1"))),
        ),
    ];
    for (name, title, token) in rt_cases {
        let pairs = auth_form(&token);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let (sent, base) = signed(&s.form(&delegate, token_url.clone(), &refs));
        run.exchange(
            hostile(format!("auth-server.resource-token.{name}"), "E§9.3", title),
            &sent,
            bad_request("invalid_resource_token"),
            Some(&base),
        )
        .await;
    }
    // The flow: auth → consent → code → tokens → refresh.
    let pairs = auth_form(&valid_rt);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let answer = run
        .send(
            case(
                "auth-server.auth.valid",
                "E§9.3",
                "a valid resource token gets a request token or an auth token",
            ),
            &s.form(&delegate, token_url.clone(), &refs),
            Expect::Success,
        )
        .await;
    let Some(answer) = answer.filter(|a| a.status == 200) else {
        return;
    };
    let tokens = if member(&answer, "auth_token").is_some() {
        run.skip(
            case(
                "auth-server.consent.approve",
                "E§9.5",
                "the user approves on the consent pages",
            ),
            "the auth server granted without consent (autonomous policy)",
        );
        Some(answer)
    } else {
        let request_token = member(&answer, "request_token").unwrap_or_default();
        let query = consent(run, &ends.consent, &request_token, true).await;
        let code = query.as_ref().ok().and_then(|q| q.get("code").cloned());
        run.verdict(
            case(
                "auth-server.consent.approve",
                "E§9.5",
                "approving on the consent pages redirects with a code and the state",
            ),
            format!(
                "{}?request_token=…&redirect_uri={}&state=…",
                ends.consent,
                run.host.redirect_uri()
            ),
            "a redirect to the redirect URI with code and state",
            match (&query, &code) {
                (Ok(_), Some(_)) => Ok("code and state".to_owned()),
                (Ok(q), None) => Err(format!("no code: {q:?}")),
                (Err(e), _) => Err(e.clone()),
            },
        );
        match code {
            Some(code) => {
                let pairs = [
                    ("request_type", "code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect_uri.as_str()),
                ];
                let (sent, base) = signed(&s.form(&delegate, token_url.clone(), &pairs));
                let redeemed = run
                    .exchange(
                        case(
                            "auth-server.code.redeem",
                            "E§9.6",
                            "the code is exchanged for an auth token",
                        ),
                        &sent,
                        Expect::Success,
                        Some(&base),
                    )
                    .await;
                // The same code again, in a new request.
                let (sent, base) = signed(&s.form(&delegate, token_url.clone(), &pairs));
                run.exchange(
                    hostile(
                        "auth-server.code.replayed",
                        "P-AS-5",
                        "the code redeemed a second time",
                    ),
                    &sent,
                    bad_request("invalid_grant"),
                    Some(&base),
                )
                .await;
                redeemed.filter(|r| r.status == 200)
            }
            None => None,
        }
    };
    let garbage_pairs = [
        ("request_type", "code"),
        ("code", "conformance-no-such-code"),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    run.send(
        hostile("auth-server.code.unknown", "P-AS-5", "a code never issued"),
        &s.form(&delegate, token_url.clone(), &garbage_pairs),
        bad_request("invalid_grant"),
    )
    .await;
    run.send(
        hostile(
            "auth-server.refresh.unknown",
            "P-AS-6",
            "a refresh token never issued",
        ),
        &s.form(
            &delegate,
            token_url.clone(),
            &[
                ("request_type", "refresh"),
                ("refresh_token", "conformance-no-such-token"),
            ],
        ),
        bad_request("invalid_grant"),
    )
    .await;

    let Some(tokens) = tokens else { return };
    let auth_token = member(&tokens, "auth_token").unwrap_or_default();
    let jwks = fetch_jwks(run, &ends.jwks).await;
    let result = jwks
        .and_then(|jwks| verify_token(&auth_token, &jwks))
        .and_then(|(header, claims)| {
            all_of(
                &[
                    (
                        "typ is not auth+jwt",
                        claim(&header, "typ") == Some("auth+jwt"),
                    ),
                    (
                        "iss is not the issuer",
                        claim(&claims, "iss") == Some(ends.issuer.as_str()),
                    ),
                    (
                        "aud is not the resource",
                        claims.get("aud").is_some_and(|a| {
                            a.as_str() == Some(suite.as_str())
                                || a.as_array().is_some_and(|v| {
                                    v.iter().any(|x| x.as_str() == Some(suite.as_str()))
                                })
                        }),
                    ),
                    // P-TOK-4: `agent` is left out when `aud` is the agent, as
                    // here, where the suite is both the agent and the resource.
                    (
                        "agent is neither the caller nor absent",
                        claim(&claims, "agent").is_none_or(|a| a == suite),
                    ),
                    (
                        "cnf.jwk is not the caller's key",
                        is_key(claims.get("cnf").and_then(|c| c.get("jwk")), delegate.key()),
                    ),
                    (
                        "exp is not in the future",
                        claims
                            .get("exp")
                            .and_then(Value::as_u64)
                            .is_some_and(|e| e > unix_now()),
                    ),
                ],
                format!(
                    "auth+jwt for {suite}, scope {:?}",
                    claim(&claims, "scope").unwrap_or_default()
                ),
            )
        });
    run.verdict(
        case("auth-server.auth-token.claims", "E§7.3", "the auth token names the issuer, the resource, the agent and binds its key"),
        "the auth_token answered",
        "auth+jwt signed by a key of the JWKS; iss, aud, agent (or none, aud being the agent), cnf.jwk, exp",
        result,
    );

    // Tokens in the wrong place.
    let as_caller = Identity::AuthToken {
        auth_token: auth_token.clone(),
        key: delegate.key().clone(),
    };
    run.send(
        hostile(
            "auth-server.caller.auth-token",
            "P-ERR-1",
            "an auth token as the caller's identity",
        ),
        &s.form(&as_caller, token_url.clone(), &refs),
        Expect::unauthorized("insufficient_auth_level", Level::Identified),
    )
    .await;
    let rt_caller = Identity::AuthToken {
        auth_token: valid_rt.clone(),
        key: delegate.key().clone(),
    };
    run.send(
        hostile(
            "auth-server.caller.resource-token",
            "P-ERR-1",
            "a resource token as the caller's identity",
        ),
        &s.form(&rt_caller, token_url.clone(), &refs),
        Expect::unauthorized("invalid_auth_token", Level::Identified),
    )
    .await;

    if let Some(refresh_token) = member(&tokens, "refresh_token") {
        let pairs = [
            ("request_type", "refresh"),
            ("refresh_token", refresh_token.as_str()),
        ];
        let (sent, base) = signed(&s.form(&delegate, token_url.clone(), &pairs));
        run.exchange(
            case(
                "auth-server.refresh.valid",
                "E§9.7",
                "the refresh token gets a new auth token",
            ),
            &sent,
            Expect::Success,
            Some(&base),
        )
        .await;
        let stranger_key = key();
        let stranger = Identity::Delegate {
            agent_token: run.host.agent_token("delegate-stranger", &stranger_key),
            key: stranger_key,
        };
        let (sent, base) = signed(&s.form(&stranger, token_url.clone(), &pairs));
        run.exchange(
            hostile(
                "auth-server.refresh.other-delegate",
                "P-AS-6",
                "the refresh token presented by another delegate",
            ),
            &sent,
            bad_request("invalid_grant"),
            Some(&base),
        )
        .await;
    } else {
        run.skip(
            case("auth-server.refresh.valid", "E§9.7", "refresh"),
            "no refresh_token was issued",
        );
    }

    // The user says no.
    let denied_rt = resource_token(&good_claims(delegate.key()));
    let pairs = auth_form(&denied_rt);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let answer = token_call(run, &token_url, &delegate, &refs).await;
    match answer.ok().and_then(|a| member(&a, "request_token")) {
        Some(request_token) => {
            let query = consent(run, &ends.consent, &request_token, false).await;
            run.verdict(
                case(
                    "auth-server.consent.deny",
                    "P-ERR-1",
                    "denying redirects with error=access_denied and no code",
                ),
                "the consent pages, pressing the deny button",
                "a redirect with error=access_denied, state, and no code",
                query.and_then(|q| {
                    all_of(
                        &[
                            (
                                "error is not access_denied",
                                q.get("error").map(String::as_str) == Some("access_denied"),
                            ),
                            ("a code came with the denial", !q.contains_key("code")),
                        ],
                        format!("{q:?}"),
                    )
                }),
            );
        }
        None => run.skip(
            case("auth-server.consent.deny", "P-ERR-1", "denying consent"),
            "the auth server asked for no consent",
        ),
    }
}
