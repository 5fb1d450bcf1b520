//! A resource under test: discovery, the level walk (unsigned →
//! pseudonymous → identified → authorized, refresh), key rotation at the
//! suite's agent server, and the hostile cases — the signature profile,
//! `Signature-Key`, agent and auth tokens, `Nonce` and `Content-Digest`,
//! oversized and malformed structured fields, and a garbage sweep.

use std::sync::Arc;

use aauth_http::client::Identity;
use aauth_protocol::b64;
use aauth_protocol::challenge::Level;
use aauth_protocol::keys::{SigningKey, sha512};
use aauth_protocol::signature_key::Syntax;
use serde_json::{Value, json};
use url::Url;

use super::auth_server::{Grant, authorize, refresh};
use super::{
    Lcg, Signer, all_of, at, claim, fetch_json, fetch_jwks, jwks_is_public, key, signed,
    url_member, verify_token,
};
use aauth_http::server::unix_now;
use aauth_protocol::content_digest::sha256_field as content_digest;

use crate::craft::{Draft, Finished, fresh_nonce, quoted, signature_member};
use crate::host::{AGENT_KID, Host, JWKS_PATH};
use crate::jws;
use crate::profile::ResourceTarget;
use crate::run::{Expect, Run, case, hostile};
use crate::wire::{Sent, cut};
use aauth_protocol::httpsig::SignatureEncoding::UnpaddedBase64Url;

/// What discovery found.
struct Target {
    origin: Url,
    beyond_scope: Option<(String, Url)>,
    rate_probe: Option<(Url, u32)>,
    identified: Url,
    authorized: Url,
    /// `resource_token_endpoint`: a POST at the identified level.
    token_endpoint: Option<Url>,
    scope: String,
}

/// Runs every resource check.
pub(super) async fn run(run: &mut Run, target: &ResourceTarget) {
    run.wire.allow(&target.url);
    let Some(t) = discovery(run, target).await else {
        return;
    };
    let walked = walk(run, &t).await;
    if !walked.baseline {
        run.skip(
            case("resource.hostile", "E§10.7", "the hostile cases"),
            "the well-formed identified request was not accepted \
             (resource.walk.agent-server): refusals would prove nothing",
        );
        return;
    }
    rotation(run, &t).await;
    signature_profile(run, &t).await;
    signature_key_field(run, &t).await;
    agent_tokens(run, &t).await;
    bodies_and_nonces(run, &t).await;
    auth_tokens(
        run,
        &t,
        walked.grant.as_ref(),
        walked.resource_token.as_deref(),
    )
    .await;
    structured_fields(run, &t).await;
    garbage(run, &t).await;
    rate_limit(run, &t).await;
}

/// Unsigned requests to a public path until the tier's limit answers 429
/// `rate_limited` with `Retry-After` and the next level's challenge
/// (E§4.5, P-ERR-1).
async fn rate_limit(run: &mut Run, t: &Target) {
    let Some((url, most)) = t.rate_probe.clone() else {
        return;
    };
    let c = case(
        "resource.rate.unsigned",
        "E§4.5",
        "unsigned requests past the tier's limit get 429 rate_limited",
    );
    let sent = Sent::new("GET", url.clone());
    let mut last = None;
    for _ in 0..most {
        match run.wire.send(&sent).await {
            Ok(seen) if seen.status == 429 => {
                last = Some(seen);
                break;
            }
            Ok(seen) => last = Some(seen),
            Err(e) => {
                run.verdict(c, format!("GET {url} unsigned"), "429", Err(e.to_string()));
                return;
            }
        }
    }
    let expect = Expect::Refused {
        status: 429,
        error: "rate_limited",
        level: Some(Level::Pseudonymous),
        no_resource_token: true,
    };
    let result = match &last {
        None => Err("nothing was sent".to_owned()),
        Some(seen) => expect
            .judge(seen)
            .and_then(|()| {
                seen.headers
                    .get("retry-after")
                    .map(|_| seen.describe())
                    .ok_or_else(|| "no Retry-After".to_owned())
            })
            .map_err(|why| format!("{why}: {} after up to {most} requests", seen.describe())),
    };
    run.verdict(
        c,
        format!("up to {most} unsigned GET {}", url.path()),
        format!("{} with Retry-After", expect.describe()),
        result,
    );
}

async fn discovery(run: &mut Run, target: &ResourceTarget) -> Option<Target> {
    let url = at(&target.url, "/.well-known/aauth-resource");
    let document = fetch_json(run, &url).await;
    let origin = target.url.origin().ascii_serialization();
    let ok = run.verdict(
        case(
            "resource.discovery.metadata",
            "E§8.3",
            "resource metadata names the resource and its JWKS",
        ),
        format!("GET {url}"),
        format!("200 JSON with resource = {origin} and jwks_uri"),
        document.as_ref().map_err(Clone::clone).and_then(|d| {
            all_of(
                &[
                    (
                        "resource is not the origin",
                        claim(d, "resource") == Some(&origin),
                    ),
                    ("no jwks_uri", claim(d, "jwks_uri").is_some()),
                ],
                format!("resource {:?}", claim(d, "resource").unwrap_or_default()),
            )
        }),
    );
    let document = document.ok()?;
    if let Ok(jwks_url) = url_member(&document, "jwks_uri") {
        run.wire.allow_same_host(&jwks_url, &target.url);
        let jwks = fetch_json(run, &jwks_url).await;
        run.verdict(
            case(
                "resource.discovery.jwks",
                "E§8.3",
                "the resource's JWKS holds public keys only",
            ),
            format!("GET {jwks_url}"),
            "a JWKS with at least one key and no private members",
            jwks.and_then(|d| jwks_is_public(&d)),
        );
    }
    let token_endpoint = url_member(&document, "resource_token_endpoint").ok();
    if let Some(endpoint) = &token_endpoint {
        run.wire.allow_same_host(endpoint, &target.url);
    }
    ok.then(|| Target {
        origin: target.url.clone(),
        beyond_scope: target
            .beyond_scope
            .as_ref()
            .map(|(method, path)| (method.clone(), at(&target.url, path))),
        rate_probe: target
            .rate_probe
            .as_ref()
            .map(|(path, n)| (at(&target.url, path), *n)),
        identified: at(&target.url, &target.identified_path),
        authorized: at(&target.url, &target.authorized_path),
        token_endpoint,
        scope: target.scope.clone(),
    })
}

struct Walked {
    baseline: bool,
    grant: Option<(Grant, Identity)>,
    resource_token: Option<String>,
}

/// Unsigned → pseudonymous → identified (both ways) → authorized → refresh.
async fn walk(run: &mut Run, t: &Target) -> Walked {
    let s = Signer::of(run);
    let path = t.identified.path().to_owned();
    run.exchange(
        case(
            "resource.walk.unsigned",
            "E§4.1",
            format!("an unsigned GET {path} is asked for a signature"),
        ),
        &Sent::new("GET", t.identified.clone()),
        Expect::unauthorized("invalid_signature", Level::Identified),
        None,
    )
    .await;

    let hwk = Identity::Hwk(key());
    run.send(
        case(
            "resource.walk.pseudonymous",
            "P-CH-3",
            format!("a pseudonymous GET {path} is asked to identify, with no resource token"),
        ),
        &s.draft(&hwk, "GET", t.identified.clone(), None),
        Expect::unauthorized("insufficient_auth_level", Level::Identified),
    )
    .await;

    let server = run.host.agent_server();
    let baseline = run
        .send(
            case(
                "resource.walk.agent-server",
                "SK0§2.4",
                format!("GET {path} signed by an agent server (jwks_uri) is accepted"),
            ),
            &s.draft(&server, "GET", t.identified.clone(), None),
            Expect::Success,
        )
        .await
        .is_some_and(|s| (200..300).contains(&s.status));

    let mut parenthesised = s.draft(&server, "GET", t.identified.clone(), None);
    parenthesised.signature_key = server
        .signature_key_labelled(s.style.label.clone())
        .to_header_value(Syntax::Parenthesised)
        .unwrap_or_default();
    run.send(
        case(
            "resource.walk.parenthesised",
            "P-SK-2",
            "the explainer's parenthesised Signature-Key is accepted",
        ),
        &parenthesised,
        Expect::Success,
    )
    .await;

    let delegate = run.host.delegate("delegate-walk");
    run.send(
        case(
            "resource.walk.delegate",
            "E§5",
            format!("GET {path} signed by a delegate with its agent token is accepted"),
        ),
        &s.draft(&delegate, "GET", t.identified.clone(), None),
        Expect::Success,
    )
    .await;

    let authorized_path = t.authorized.path().to_owned();
    let step_up = run
        .send(
            case(
                "resource.walk.step-up",
                "E§4.3",
                format!("an identified GET {authorized_path} is asked for an auth token"),
            ),
            &s.draft(&delegate, "GET", t.authorized.clone(), None),
            Expect::Refused {
                status: 401,
                error: "insufficient_auth_level",
                level: Some(Level::Authorized),
                no_resource_token: false,
            },
        )
        .await;
    let challenge = step_up.as_ref().and_then(|s| s.agent_auth()?.ok());
    let resource_token = challenge
        .as_ref()
        .and_then(|c| c.resource_token().map(str::to_owned));
    let auth_server = challenge
        .as_ref()
        .and_then(|c| c.auth_server().map(str::to_owned));
    let (Some(resource_token), Some(auth_server)) = (resource_token, auth_server) else {
        run.skip(
            case(
                "resource.token.claims",
                "E§6",
                "the resource token's claims",
            ),
            "the step-up challenge carried no resource token and auth server",
        );
        return Walked {
            baseline,
            grant: None,
            resource_token: None,
        };
    };
    resource_token_claims(run, t, &resource_token, &auth_server, delegate.key()).await;

    let grant = match Url::parse(&auth_server) {
        Ok(auth_server_url) => {
            run.wire.allow_same_host(&auth_server_url, &t.origin);
            let result = authorize(run, &auth_server_url, &resource_token, &delegate).await;
            let ok = result.is_ok();
            run.verdict(
                case(
                    "resource.walk.authorize",
                    "E§9.3",
                    "the challenge's auth server grants an auth token for the resource token",
                ),
                format!("request_type=auth at {auth_server} (consent through its pages if asked)"),
                "an auth token",
                result
                    .as_ref()
                    .map(|g| format!("an auth token, scope {:?}", g.scope))
                    .map_err(Clone::clone),
            );
            ok.then(|| result.ok()).flatten()
        }
        Err(e) => {
            run.verdict(
                case(
                    "resource.walk.authorize",
                    "E§4.3",
                    "the challenge names a usable auth server",
                ),
                "",
                "an auth_server URL",
                Err(format!("{auth_server:?}: {e}")),
            );
            None
        }
    };
    let Some(grant) = grant else {
        return Walked {
            baseline,
            grant: None,
            resource_token: Some(resource_token),
        };
    };
    let authorized = Identity::AuthToken {
        auth_token: grant.auth_token.clone(),
        key: delegate.key().clone(),
    };
    run.send(
        case(
            "resource.walk.authorized",
            "E§7.7",
            format!("GET {authorized_path} with the auth token is accepted"),
        ),
        &s.draft(&authorized, "GET", t.authorized.clone(), None),
        Expect::Success,
    )
    .await;

    if let Some((method, url)) = &t.beyond_scope {
        let body: &[u8] = b"{\"text\":\"conformance\"}";
        let draft = s.draft(
            &authorized,
            method,
            url.clone(),
            Some((body, "application/json")),
        );
        let (sent, base) = signed(&draft);
        let seen = run
            .exchange(
                case(
                    "resource.walk.insufficient-scope",
                    "P-ERR-1",
                    format!("{method} {} with a token lacking its scope", url.path()),
                ),
                &sent,
                Expect::Refused {
                    status: 403,
                    error: "insufficient_scope",
                    level: Some(Level::Authorized),
                    no_resource_token: false,
                },
                Some(&base),
            )
            .await;
        if let Some(seen) = seen.filter(|s| s.status == 403) {
            run.verdict(
                case(
                    "resource.walk.insufficient-scope-token",
                    "P-ERR-1",
                    "the 403 carries a resource token for the scope needed",
                ),
                "the 403's Agent-Auth",
                "resource_token and auth_server",
                seen.resource_token()
                    .map(|_| "a resource token".to_owned())
                    .ok_or_else(|| seen.describe()),
            );
        }
    }

    let mut grant = grant;
    if grant.refresh_token.is_some() {
        match refresh(run, &grant, &delegate).await {
            Ok(fresh) => {
                let authorized = Identity::AuthToken {
                    auth_token: fresh.auth_token.clone(),
                    key: delegate.key().clone(),
                };
                let (sent, base) = signed(&s.draft(&authorized, "GET", t.authorized.clone(), None));
                run.exchange(
                    case(
                        "resource.walk.refreshed",
                        "E§9.7",
                        "a refreshed auth token is accepted",
                    ),
                    &sent,
                    Expect::Success,
                    Some(&base),
                )
                .await;
                grant = fresh;
            }
            Err(e) => {
                run.verdict(
                    case(
                        "resource.walk.refreshed",
                        "E§9.7",
                        "a refreshed auth token is accepted",
                    ),
                    "request_type=refresh",
                    "a new auth token",
                    Err(e),
                );
            }
        }
    }
    Walked {
        baseline,
        grant: Some((grant, delegate)),
        resource_token: Some(resource_token),
    }
}

async fn resource_token_claims(
    run: &mut Run,
    t: &Target,
    token: &str,
    auth_server: &str,
    delegate_key: &SigningKey,
) {
    let jwks_url = at(&t.origin, "/.well-known/aauth-resource");
    let jwks = match fetch_json(run, &jwks_url)
        .await
        .and_then(|d| url_member(&d, "jwks_uri"))
    {
        Ok(url) => fetch_jwks(run, &url).await,
        Err(e) => Err(e),
    };
    let origin = t.origin.origin().ascii_serialization();
    let agent = run.host.origin().as_str().to_owned();
    let jkt = delegate_key.public_key().thumbprint().as_str().to_owned();
    let result = jwks.and_then(|jwks| verify_token(token, &jwks)).and_then(|(header, claims)| {
        let scope = claim(&claims, "scope").unwrap_or_default();
        all_of(
            &[
                ("typ is not resource+jwt", claim(&header, "typ") == Some("resource+jwt")),
                ("iss is not the resource", claim(&claims, "iss") == Some(&origin)),
                ("aud is not the auth server", claims.get("aud").is_some_and(|a| {
                    a.as_str() == Some(auth_server)
                        || a.as_array().is_some_and(|v| v.iter().any(|x| x.as_str() == Some(auth_server)))
                })),
                ("agent is not the caller", claim(&claims, "agent") == Some(&agent)),
                ("agent_jkt is not the signing key's thumbprint", claim(&claims, "agent_jkt") == Some(&jkt)),
                ("scope lacks the needed scope", scope.split(' ').any(|s| s == t.scope)),
                ("exp is not in the future", claims.get("exp").and_then(Value::as_u64).is_some_and(|e| e > unix_now())),
            ],
            format!("typ resource+jwt, aud {auth_server}, scope {scope:?}, signed by the resource's key"),
        )
    });
    run.verdict(
        case(
            "resource.token.claims",
            "E§6",
            "the resource token names this resource, the auth server, the agent and its key",
        ),
        "the step-up challenge's resource_token",
        "resource+jwt signed by a key of the resource's JWKS; iss, aud, agent, agent_jkt, scope, exp",
        result,
    );
}

/// Keys rotated at the suite's agent server, each on an origin of its own
/// (the refetch a rotation needs is limited per origin, P-MD-3).
async fn rotation(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    for (id, title, rule, replace) in [
        (
            "resource.rotation.new-kid",
            "a key published under a new kid is fetched and accepted",
            "P-MD-3",
            false,
        ),
        (
            "resource.rotation.reused-kid",
            "a new key under the same kid (a restart) is refetched and accepted",
            "P-MD-3",
            true,
        ),
    ] {
        let host = match Host::start("127.0.0.1:0", None).await {
            Ok(host) => host,
            Err(e) => {
                run.skip(case(id, rule, title), format!("a second agent server: {e}"));
                continue;
            }
        };
        run.wire.allow(&host.url());
        // First a request the target accepts, so that it caches the JWKS.
        let (sent, _) = signed(&s.draft(&host.agent_server(), "GET", t.identified.clone(), None));
        let cached = run.wire.send(&sent).await;
        if !cached
            .as_ref()
            .is_ok_and(|s| (200..300).contains(&s.status))
        {
            run.skip(
                case(id, rule, title),
                format!(
                    "the first request from a fresh agent server was not accepted: {}",
                    cached
                        .map(|s| s.describe())
                        .unwrap_or_else(|e| e.to_string())
                ),
            );
            continue;
        }
        let kid = if replace {
            AGENT_KID
        } else {
            "conformance-agent-2"
        };
        if let Err(e) = host.rotate_agent_key(kid, replace) {
            run.skip(case(id, rule, title), e);
            continue;
        }
        let (sent, base) =
            signed(&s.draft(&host.agent_server(), "GET", t.identified.clone(), None));
        run.exchange(case(id, rule, title), &sent, Expect::Success, Some(&base))
            .await;
    }
}

type Before = Box<dyn FnOnce(&mut Draft) + Send>;
type After = Box<dyn FnOnce(&mut Sent, &Finished) + Send>;

/// One request of a group: the group's well-formed draft, changed before
/// signing, after signing, or both, and what the answer must be.
struct Probe {
    name: &'static str,
    rule: &'static str,
    title: &'static str,
    before: Option<Before>,
    after: Option<After>,
    /// `None`: the group's refusal.
    expect: Option<Expect>,
    hostile: bool,
}

/// A hostile request the group's refusal must answer.
fn refused(name: &'static str, rule: &'static str, title: &'static str) -> Probe {
    Probe {
        name,
        rule,
        title,
        before: None,
        after: None,
        expect: None,
        hostile: true,
    }
}

/// A variation the profile allows: it must be accepted.
fn accepted(name: &'static str, rule: &'static str, title: &'static str) -> Probe {
    Probe {
        expect: Some(Expect::Success),
        hostile: false,
        ..refused(name, rule, title)
    }
}

impl Probe {
    fn before(mut self, change: impl FnOnce(&mut Draft) + Send + 'static) -> Self {
        self.before = Some(Box::new(change));
        self
    }

    fn after(mut self, change: impl FnOnce(&mut Sent, &Finished) + Send + 'static) -> Self {
        self.after = Some(Box::new(change));
        self
    }

    fn expect(mut self, expect: Expect) -> Self {
        self.expect = Some(expect);
        self
    }

    /// Signs `draft` with the changes, sends it as `group.name`, judges.
    async fn run(self, run: &mut Run, group: &str, mut draft: Draft, refusal: &Expect) {
        if let Some(before) = self.before {
            before(&mut draft);
        }
        let finished = draft.finish();
        let mut sent = finished.sent.clone();
        if let Some(after) = self.after {
            after(&mut sent, &finished);
        }
        let id = format!("resource.{group}.{}", self.name);
        let c = if self.hostile {
            hostile(id, self.rule, self.title)
        } else {
            case(id, self.rule, self.title)
        };
        let expect = self.expect.unwrap_or_else(|| refusal.clone());
        run.exchange(c, &sent, expect, Some(&finished.base)).await;
    }
}

/// Runs `probes` on fresh copies of `draft`.
async fn group(
    run: &mut Run,
    name: &str,
    draft: impl Fn() -> Draft,
    refusal: Expect,
    probes: Vec<Probe>,
) {
    for probe in probes {
        probe.run(run, name, draft(), &refusal).await;
    }
}

/// Replaces the `Signature` value with `bytes`, written as before.
fn signature(sent: &mut Sent, finished: &Finished, bytes: &[u8]) {
    sent.set_header("Signature", finished.signature_member(bytes));
}

/// Replaces the covered component `from` with `to`.
fn rename_component(draft: &mut Draft, from: &str, to: &str) {
    if let Some(c) = draft.components.iter_mut().find(|c| **c == quoted(from)) {
        *c = to.to_owned();
    }
}

/// The hostile cases of the RFC 9421 profile, on the identified GET.
async fn signature_profile(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let server = run.host.agent_server();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let mut probes = vec![
        refused("no-signature", "E§10.7", "Signature missing")
            .after(|s, _| s.remove_header("Signature")),
        refused("no-signature-input", "E§10.7", "Signature-Input missing")
            .after(|s, _| s.remove_header("Signature-Input")),
        refused("no-signature-key", "SK0§2", "Signature-Key missing")
            .after(|s, _| s.remove_header("Signature-Key")),
        refused(
            "label-mismatch-input",
            "P-SIG-3",
            "Signature-Input under another label",
        )
        .after(|s, f| {
            let v = s.header("Signature-Input").unwrap_or_default();
            let v = v.replacen(&f.prefix(), "other=", 1);
            s.set_header("Signature-Input", v);
        }),
        refused(
            "label-mismatch-key",
            "P-SIG-3",
            "Signature-Key under another label",
        )
        .before(|d| {
            let label = format!("{}=", d.label);
            d.signature_key = d.signature_key.replacen(&label, "other=", 1);
        }),
        accepted(
            "any-label",
            "P-SIG-3",
            "another label, the same on all three headers",
        )
        .before(|d| {
            let label = format!("{}=", d.label);
            d.label = "conformance".to_owned();
            d.signature_key = d.signature_key.replacen(&label, "conformance=", 1);
        }),
        refused(
            "two-signatures",
            "P-SIG-3",
            "a second signature beside the first",
        )
        .after(|s, f| {
            let input = s.header("Signature-Input").unwrap_or_default().to_owned();
            let second = input.replacen(&f.prefix(), "second=", 1);
            s.set_header("Signature-Input", format!("{input}, {second}"));
            let one = f.signature_member(&f.signature);
            let two = signature_member("second", f.encoding, &f.signature);
            s.set_header("Signature", format!("{one}, {two}"));
        }),
        refused("uncovered-method", "P-SIG-1", "@method not covered")
            .before(|d| d.uncover("@method")),
        refused("uncovered-authority", "P-SIG-1", "@authority not covered")
            .before(|d| d.uncover("@authority")),
        refused("uncovered-path", "P-SIG-1", "@path not covered").before(|d| d.uncover("@path")),
        refused(
            "uncovered-signature-key",
            "P-SIG-1",
            "signature-key not covered",
        )
        .before(|d| d.uncover("signature-key")),
        refused(
            "query-without-query",
            "P-SIG-1",
            "@query covered on a target without ?",
        )
        .before(|d| d.cover("@query")),
        refused("created-missing", "P-SIG-2", "no created parameter")
            .before(|d| d.params = String::new()),
        refused("created-string", "P-SIG-2", "created as a string")
            .before(move |d| d.params = format!(";created=\"{now}\"")),
        refused("created-future", "P-SIG-2", "created 300 s in the future")
            .before(move |d| d.created(now + 300)),
        refused("created-past", "P-SIG-2", "created 300 s in the past")
            .before(move |d| d.created(now - 300)),
        refused("created-negative", "P-SIG-2", "created negative").before(|d| d.created(-5)),
        refused(
            "created-huge",
            "P-SIG-2",
            "created at the structured-field integer limit",
        )
        .before(|d| d.params = ";created=999999999999999".to_owned()),
        refused("created-decimal", "P-SIG-2", "created as a decimal")
            .before(move |d| d.params = format!(";created={now}.5")),
        refused("expired", "P-SIG-2", "expires in the past")
            .before(move |d| d.params = format!(";created={now};expires={}", now - 10)),
        refused("alg-mismatch", "P-SIG-4", "alg naming another key type").before(move |d| {
            d.params = format!(";created={now};alg=\"ecdsa-p256-sha256\"");
        }),
        refused("alg-unknown", "P-SIG-4", "alg hmac-sha256")
            .before(move |d| d.params = format!(";created={now};alg=\"hmac-sha256\"")),
        accepted("alg-matching", "P-SIG-2", "alg ed25519, matching the key")
            .before(move |d| d.params = format!(";created={now};alg=\"ed25519\"")),
        refused("tampered-method", "E§10.7", "signed as DELETE, sent as GET")
            .before(|d| d.base_values.push((quoted("@method"), "DELETE".to_owned()))),
        refused(
            "tampered-authority",
            "E§10.3.1",
            "signed for another authority",
        )
        .before(|d| {
            d.base_values
                .push((quoted("@authority"), "resource.example".to_owned()));
        }),
        refused("tampered-path", "E§10.7", "signed for another path").before(|d| {
            d.base_values
                .push((quoted("@path"), "/elsewhere".to_owned()))
        }),
        refused(
            "tampered-signature-key",
            "E§10.7",
            "Signature-Key changed after signing",
        )
        .after(|s, _| {
            let v = s.header("Signature-Key").unwrap_or_default();
            let v = v.replace(AGENT_KID, "conformance-agent-x");
            s.set_header("Signature-Key", v);
        }),
        refused("flipped-bit", "E§10.7", "one bit of the signature flipped").after(|s, f| {
            let mut sig = f.signature.clone();
            if let Some(first) = sig.first_mut() {
                *first ^= 1;
            }
            signature(s, f, &sig);
        }),
        refused("truncated", "E§10.7", "the signature one byte short").after(|s, f| {
            let short = f.signature.get(..f.signature.len().saturating_sub(1));
            signature(s, f, short.unwrap_or_default());
        }),
        refused("empty-signature", "E§10.7", "an empty byte sequence")
            .after(|s, f| s.set_header("Signature", format!("{}::", f.prefix()))),
        refused("not-base64", "P-SIG-7", "a signature that is not base64")
            .after(|s, f| s.set_header("Signature", format!("{}:!!!!:", f.prefix()))),
        refused(
            "unpadded-base64url",
            "P-SIG-7",
            "unpadded base64url inside the colons",
        )
        .after(|s, f| {
            let value = signature_member(&f.label, UnpaddedBase64Url, &f.signature);
            s.set_header("Signature", value);
        }),
        refused(
            "token-not-bytes",
            "P-SIG-7",
            "a token where a byte sequence belongs",
        )
        .after(|s, f| s.set_header("Signature", format!("{}abc", f.prefix()))),
        refused(
            "input-not-dictionary",
            "E§10.7",
            "Signature-Input not a dictionary",
        )
        .after(|s, _| s.set_header("Signature-Input", "(\"@method\");created=1")),
        refused(
            "input-not-inner-list",
            "E§10.7",
            "a Signature-Input member not an inner list",
        )
        .after(|s, f| s.set_header("Signature-Input", format!("{}\"@method\"", f.prefix()))),
        refused("duplicate-component", "E§10.7", "a component covered twice")
            .before(|d| d.components.insert(0, quoted("@method"))),
        refused(
            "uppercase-component",
            "E§10.7",
            "a component name in upper case",
        )
        .before(|d| rename_component(d, "@method", "\"@METHOD\"")),
        refused("unknown-derived", "E§10.7", "an unknown derived component")
            .before(|d| d.cover("@conformance")),
        refused(
            "response-parameter",
            "E§10.7",
            "the response-only req parameter",
        )
        .before(|d| rename_component(d, "@method", "\"@method\";req")),
        refused(
            "absent-header-covered",
            "E§10.7",
            "a covered header that is not sent",
        )
        .before(|d| d.cover("x-conformance-absent")),
        accepted(
            "extra-header-covered",
            "P-SIG-1",
            "another covered header, verified",
        )
        .before(|d| {
            d.set_header("X-Conformance", "one");
            d.cover("x-conformance");
        }),
        refused(
            "extra-header-tampered",
            "P-SIG-1",
            "a covered extra header changed",
        )
        .before(|d| {
            d.set_header("X-Conformance", "one");
            d.cover("x-conformance");
        })
        .after(|s, _| s.set_header("X-Conformance", "two")),
        accepted(
            "uncovered-header-changed",
            "E§10.7",
            "an uncovered header may change",
        )
        .after(|s, _| s.set_header("X-Conformance", "anything")),
        refused(
            "wrong-key",
            "E§10.7",
            "signed by a key other than Signature-Key's",
        )
        .before(|d| d.key = key()),
        refused(
            "body-components-without-body",
            "P-SIG-1",
            "content-digest without a body",
        )
        .before(|d| {
            d.set_header("Content-Digest", content_digest(b""));
            d.cover("content-digest");
        }),
    ];
    if s.style.encoding == UnpaddedBase64Url {
        probes.retain(|p| p.name != "unpadded-base64url");
        run.skip(
            hostile(
                "resource.sig.unpadded-base64url",
                "P-SIG-7",
                "unpadded base64url",
            ),
            "this --compat style writes unpadded base64url itself",
        );
    }
    let identified = t.identified.clone();
    let fresh = {
        let (s, server) = (s.clone(), server.clone());
        move || s.draft(&server, "GET", identified.clone(), None)
    };
    let refusal = Expect::bad_signature(Level::Identified);
    group(run, "sig", fresh, refusal.clone(), probes).await;

    // The query rules need a target with a query.
    let mut with_query = t.identified.clone();
    with_query.set_query(Some("conformance=1"));
    let probes = vec![
        refused(
            "query-uncovered",
            "P-SIG-1",
            "a query not covered by @query",
        )
        .before(|d| d.uncover("@query")),
        refused("tampered-query", "P-SIG-1", "signed for another query").before(|d| {
            d.base_values
                .push((quoted("@query"), "?conformance=2".to_owned()));
        }),
        accepted("query-covered", "P-SIG-1", "a query covered by @query"),
    ];
    let fresh = move || s.draft(&server, "GET", with_query.clone(), None);
    group(run, "sig", fresh, refusal, probes).await;
}

/// Sends GET on the identified path with `Signature-Key: value`, signed by
/// `signer`.
async fn with_signature_key(
    run: &mut Run,
    t: &Target,
    (name, rule, title, value): (&'static str, &'static str, &'static str, String),
    signer: &Arc<SigningKey>,
    expect: Expect,
) {
    let finished = Signer::of(run)
        .raw("GET", t.identified.clone(), None, value, signer.clone())
        .finish();
    run.exchange(
        hostile(format!("resource.signature-key.{name}"), rule, title),
        &finished.sent,
        expect,
        Some(&finished.base),
    )
    .await;
}

/// `Signature-Key` values written by hand.
async fn signature_key_field(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let origin = run.host.origin().as_str().to_owned();
    let signer = run.host.agent_server().key().clone();
    let jwk = signer.public_key().to_json_value();
    let x = jwk.get("x").and_then(Value::as_str).unwrap_or_default();
    let hwk = format!("kty=\"OKP\";crv=\"Ed25519\";x=\"{x}\"");
    let l = s.label().to_owned();
    let jwks = |id: &str, params: &str| format!("{l}=jwks_uri;id=\"{id}\"{params}");
    let agent = format!(";well-known=\"aauth-agent\";kid=\"{AGENT_KID}\"");
    let cases = vec![
        (
            "garbage",
            "SK0§2",
            "an unparsable Signature-Key",
            format!("{l}=;;;"),
        ),
        (
            "bare-token",
            "SK0§2",
            "a bare token, not a dictionary",
            "hwk".to_owned(),
        ),
        (
            "unknown-scheme",
            "SK0§2",
            "an unknown scheme",
            format!("{l}=x509;x5u=\"{origin}/cert\""),
        ),
        (
            "hwk-private",
            "SK0§2.3",
            "hwk with the private member d",
            format!("{l}=hwk;{hwk};d=\"{x}\""),
        ),
        (
            "hwk-short-x",
            "SK0§2.3",
            "hwk with a 31-byte x",
            format!(
                "{l}=hwk;kty=\"OKP\";crv=\"Ed25519\";x=\"{}\"",
                b64::url_encode([1u8; 31])
            ),
        ),
        (
            "hwk-kty-oct",
            "P-SIG-4",
            "hwk of a symmetric key type",
            format!("{l}=hwk;kty=\"oct\";k=\"{x}\""),
        ),
        (
            "hwk-crv-mismatch",
            "P-SIG-4",
            "hwk OKP with a P-256 curve",
            format!("{l}=hwk;kty=\"OKP\";crv=\"P-256\";x=\"{x}\""),
        ),
        (
            "hwk-no-x",
            "SK0§2.3",
            "hwk without x",
            format!("{l}=hwk;kty=\"OKP\";crv=\"Ed25519\""),
        ),
        (
            "jwks-id-path",
            "SK0§2.4",
            "jwks_uri whose id is a URL with a path",
            jwks(&format!("{origin}/elsewhere"), &agent),
        ),
        (
            "jwks-id-userinfo",
            "SK0§2.4",
            "jwks_uri whose id carries user info",
            jwks(&origin.replacen("://", "://user@", 1), &agent),
        ),
        (
            "jwks-id-unreachable",
            "P-MD-3",
            "jwks_uri whose id does not answer",
            jwks("http://127.0.0.1:1", &agent),
        ),
        (
            "jwks-well-known-other",
            "P-SK-3",
            "jwks_uri with a well-known other than aauth-agent",
            jwks(
                &origin,
                &format!(";well-known=\"aauth-resource\";kid=\"{AGENT_KID}\""),
            ),
        ),
        (
            "jwks-well-known-traversal",
            "P-SK-3",
            "jwks_uri with a path in well-known",
            jwks(
                &origin,
                &format!(";well-known=\"../../jwks.json\";kid=\"{AGENT_KID}\""),
            ),
        ),
        (
            "jwks-unknown-kid",
            "P-MD-3",
            "jwks_uri naming a kid the JWKS lacks",
            jwks(
                &origin,
                ";well-known=\"aauth-agent\";kid=\"conformance-unknown\"",
            ),
        ),
        (
            "jwks-kid-injection",
            "P-MD-3",
            "a kid of 2,000 characters with path and quote tricks",
            jwks(
                &origin,
                &format!(
                    ";well-known=\"aauth-agent\";kid=\"../../{}\\\"x\"",
                    "a".repeat(2000)
                ),
            ),
        ),
        (
            "jwks-no-kid",
            "SK0§2.4",
            "jwks_uri without kid",
            jwks(&origin, ";well-known=\"aauth-agent\""),
        ),
        (
            "jwks-url-form",
            "P-SK-2",
            "the explainer's jwks= URL form (Mode 1)",
            format!("{l}=(scheme=jwks jwks=\"{origin}{JWKS_PATH}\" kid=\"{AGENT_KID}\")"),
        ),
        (
            "two-members",
            "P-SIG-3",
            "two members in Signature-Key",
            format!("{l}=hwk;{hwk}, {l}2=hwk;{hwk}"),
        ),
        (
            "jwt-garbage",
            "P-ERR-1",
            "jwt scheme with a value that is no JWT",
            format!("{l}=jwt;jwt=\"not-a-jwt\""),
        ),
    ];
    for case in cases {
        let refusal = Expect::bad_signature(Level::Identified);
        with_signature_key(run, t, case, &signer, refusal).await;
    }
    // A pseudonymous key in the parenthesised syntax is read as one.
    let hwk = Identity::Hwk(key());
    let value = hwk
        .signature_key_labelled(s.style.label.clone())
        .to_header_value(Syntax::Parenthesised)
        .unwrap_or_default();
    let d = s.raw("GET", t.identified.clone(), None, value, hwk.key().clone());
    let finished = d.finish();
    run.exchange(
        case(
            "resource.signature-key.parenthesised-hwk",
            "P-SK-2",
            "hwk in the parenthesised syntax verifies (and is asked to identify)",
        ),
        &finished.sent,
        Expect::unauthorized("insufficient_auth_level", Level::Identified),
        Some(&finished.base),
    )
    .await;
}

/// `claims` with `name` set to `value` (`None`: removed).
fn edit(claims: &Value, name: &str, value: Option<Value>) -> Value {
    let mut claims = claims.clone();
    if let Some(object) = claims.as_object_mut() {
        match value {
            Some(value) => object.insert(name.to_owned(), value),
            None => object.remove(name),
        };
    }
    claims
}

/// Agent tokens the suite's agent server signs, each wrong in one way.
async fn agent_tokens(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let host = run.host.clone();
    let delegate = key();
    let good = host.agent_token_claims("delegate-hostile", &delegate);
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let header = jws::header("agent+jwt", AGENT_KID);
    let sign = |claims: &Value| host.sign_agent_token(&header, claims);
    let sign_header = |header: &Value| host.sign_agent_token(header, &good);
    let with = |name: &str, value: Value| sign(&edit(&good, name, Some(value)));
    let without = |name: &str| sign(&edit(&good, name, None));
    let attacker = key();
    let server_key = host.agent_key().1;
    let origin = host.origin().as_str().to_owned();
    let jku = json!({
        "alg": "EdDSA", "typ": "agent+jwt", "kid": "attacker",
        "jku": format!("{origin}{JWKS_PATH}"),
    });
    let crit =
        json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": AGENT_KID, "crit": ["conformance"]});
    let cnf_private = {
        let mut jwk = delegate.public_key().to_json_value();
        if let Some(o) = jwk.as_object_mut() {
            o.insert("d".into(), json!(b64::url_encode([9u8; 32])));
        }
        json!({ "jwk": jwk })
    };
    let stripped = {
        let token = sign(&good);
        let head = token.rsplit_once('.').map(|(a, _)| a).unwrap_or_default();
        format!("{head}.")
    };
    let invalid = vec![
        (
            "alg-none",
            "E§5.7",
            "alg none",
            jws::unsecured("agent+jwt", AGENT_KID, &good),
        ),
        (
            "hs256-public-key",
            "E§5.7",
            "HS256 keyed with the agent server's public key",
            jws::hs256_with_public_key("agent+jwt", AGENT_KID, server_key.public_key(), &good),
        ),
        (
            "unknown-kid",
            "E§5.7",
            "a kid the agent server's JWKS lacks",
            sign_header(&jws::header("agent+jwt", "conformance-nope")),
        ),
        (
            "kid-injection",
            "E§5.7",
            "a kid with path traversal",
            sign_header(&jws::header("agent+jwt", "../../../.well-known/jwks.json")),
        ),
        (
            "jku-injection",
            "E§5.7",
            "a jku header naming a key set with an attacker's key",
            jws::sign(&attacker, &jku, &good),
        ),
        (
            "crit-unknown",
            "E§5.7",
            "an unknown critical header",
            host.sign_agent_token(&crit, &edit(&good, "conformance", Some(json!(1)))),
        ),
        (
            "forged",
            "E§5.7",
            "signed by another key under the agent server's kid",
            jws::sign(&attacker, &header, &good),
        ),
        (
            "tampered",
            "E§5.7",
            "sub changed after signing",
            jws::tampered(&sign(&good), "sub", json!("delegate-other")),
        ),
        (
            "signature-stripped",
            "E§5.7",
            "the signature removed",
            stripped,
        ),
        (
            "expired",
            "E§5.7",
            "expired ten minutes ago",
            with("exp", json!(now - 600)),
        ),
        (
            "iat-future",
            "P-TOK-5",
            "issued ten minutes ahead",
            with("iat", json!(now + 600)),
        ),
        (
            "exp-string",
            "E§5.7",
            "exp as a string",
            with("exp", json!((now + 600).to_string())),
        ),
        ("no-exp", "E§5.7", "no exp", without("exp")),
        ("no-sub", "E§5.7", "no sub", without("sub")),
        ("no-cnf", "E§5.7", "no cnf", without("cnf")),
        (
            "cnf-private",
            "E§5.7",
            "cnf.jwk with the private member d",
            with("cnf", cnf_private),
        ),
        (
            "iss-unreachable",
            "E§5.7",
            "iss an agent server that does not answer",
            with("iss", json!("http://127.0.0.1:1")),
        ),
        (
            "iss-with-path",
            "E§5.7",
            "iss with a path",
            with("iss", json!(format!("{origin}/agent"))),
        ),
        (
            "aud-other",
            "E§5.4",
            "aud naming only another recipient",
            with("aud", json!("https://other.example")),
        ),
    ];
    // A token whose kind cannot be told is an unreadable Signature-Key.
    let unreadable = vec![
        (
            "typ-jwt",
            "P-ERR-1",
            "typ JWT: not one of the three tokens",
            sign_header(&jws::header("JWT", AGENT_KID)),
        ),
        (
            "typ-missing",
            "P-ERR-1",
            "no typ",
            sign_header(&json!({"alg": "EdDSA", "kid": AGENT_KID})),
        ),
        (
            "not-a-jws",
            "P-ERR-1",
            "a token of two segments",
            "eyJhbGciOiJFZERTQSJ9.e30".to_owned(),
        ),
    ];
    let other = key();
    let unbound = vec![(
        "cnf-mismatch",
        "E§5.7",
        "cnf naming a key other than the one that signs",
        with("cnf", json!({"jwk": other.public_key().to_json_value()})),
    )];
    for (cases, expect) in [
        (
            invalid,
            Expect::unauthorized("invalid_agent_token", Level::Identified),
        ),
        (unreadable, Expect::bad_signature(Level::Identified)),
        (
            unbound,
            Expect::unauthorized("key_binding_failed", Level::Identified),
        ),
    ] {
        for (name, rule, title, token) in cases {
            let identity = Identity::Delegate {
                agent_token: token,
                key: delegate.clone(),
            };
            let finished = s
                .draft(&identity, "GET", t.identified.clone(), None)
                .finish();
            run.exchange(
                hostile(format!("resource.agent-token.{name}"), rule, title),
                &finished.sent,
                expect.clone(),
                Some(&finished.base),
            )
            .await;
        }
    }
}

/// Bodies, `Content-Digest` and `Nonce`, on the resource token endpoint (a
/// form POST at the identified level).
async fn bodies_and_nonces(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let Some(endpoint) = t.token_endpoint.clone() else {
        run.skip(
            case("resource.post", "E§9.2.5", "POST requests"),
            "the resource publishes no resource_token_endpoint to POST to",
        );
        return;
    };
    let server = run.host.agent_server();
    let scope = t.scope.clone();
    let post = move || s.form(&server, endpoint.clone(), &[("scope", scope.as_str())]);
    let (sent, base) = signed(&post());
    let accepted_post = run
        .exchange(
            case(
                "resource.post.token-endpoint",
                "E§9.2.5",
                "a well-formed signed form POST to the resource token endpoint",
            ),
            &sent,
            Expect::Success,
            Some(&base),
        )
        .await
        .is_some_and(|s| s.status == 200);
    if !accepted_post {
        return;
    }
    run.exchange(
        hostile(
            "resource.nonce.replayed",
            "P-SIG-6",
            "the same signed POST again",
        ),
        &sent,
        Expect::unauthorized("replayed_nonce", Level::Identified),
        Some(&base),
    )
    .await;

    let refusal = Expect::bad_signature(Level::Identified);
    let nonces = vec![
        refused("missing", "P-SIG-6", "a POST without Nonce").before(|d| {
            d.headers.retain(|(n, _)| n != "Nonce");
            d.uncover("nonce");
        }),
        refused("uncovered", "E§10.5", "a Nonce sent but not covered")
            .before(|d| d.uncover("nonce")),
        refused("short", "P-SIG-6", "a Nonce of 32 bits")
            .before(|d| d.set_header("Nonce", "AAAAAA")),
        refused("bad-characters", "P-SIG-6", "a Nonce outside base64url")
            .before(|d| d.set_header("Nonce", "!".repeat(24))),
        refused("oversized", "P-SIG-6", "a Nonce of 8 KiB")
            .before(|d| d.set_header("Nonce", "A".repeat(8192)))
            .expect(Expect::Rejected),
        refused("tampered", "E§10.5", "the Nonce changed after signing")
            .after(|s, _| s.set_header("Nonce", fresh_nonce())),
    ];
    group(run, "nonce", post.clone(), refusal.clone(), nonces).await;
    let digests = vec![
        refused(
            "stale",
            "P-SIG-1",
            "the body changed after signing, the digest kept",
        )
        .after(|s, _| s.body = b"scope=conformance-other".to_vec()),
        refused("missing", "P-SIG-1", "a body without Content-Digest").before(|d| {
            d.headers.retain(|(n, _)| n != "Content-Digest");
            d.uncover("content-digest");
        }),
        refused(
            "uncovered",
            "P-SIG-1",
            "Content-Digest sent but not covered",
        )
        .before(|d| d.uncover("content-digest")),
        refused("unknown-algorithm", "P-SIG-1", "a digest only in md5").before(|d| {
            d.set_header("Content-Digest", "md5=:AAAAAAAAAAAAAAAAAAAAAA==:");
        }),
        refused(
            "malformed",
            "P-SIG-1",
            "a Content-Digest that is not byte sequences",
        )
        .before(|d| d.set_header("Content-Digest", "sha-256=abc")),
        refused("wrong", "P-SIG-1", "a well-formed digest of other bytes")
            .before(|d| d.set_header("Content-Digest", content_digest(b"other"))),
        accepted("sha-512", "P-SIG-1", "a sha-512 Content-Digest").before(|d| {
            let digest = b64::std_encode(sha512(&d.body));
            d.set_header("Content-Digest", format!("sha-512=:{digest}:"));
        }),
    ];
    group(run, "digest", post.clone(), refusal.clone(), digests).await;
    let bodies = vec![
        refused(
            "content-type-uncovered",
            "P-SIG-1",
            "content-type not covered",
        )
        .before(|d| d.uncover("content-type")),
        refused(
            "content-type-tampered",
            "P-SIG-1",
            "Content-Type changed after signing",
        )
        .after(|s, _| s.set_header("Content-Type", "text/plain")),
    ];
    group(run, "body", post, refusal, bodies).await;
}

/// Auth tokens: the real one used wrongly, and forged ones.
async fn auth_tokens(
    run: &mut Run,
    t: &Target,
    grant: Option<&(Grant, Identity)>,
    resource_token: Option<&str>,
) {
    let s = Signer::of(run);
    let signer = key();
    let origin = t.origin.origin().ascii_serialization();
    let (resource_kid, resource_signer) = run.host.resource_key();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let suite = run.host.origin().as_str().to_owned();
    let forged_claims = json!({
        "iss": suite,
        "aud": origin,
        "agent": suite,
        "cnf": {"jwk": signer.public_key().to_json_value()},
        "scope": t.scope,
        "iat": now,
        "exp": now + 300,
        "jti": "conformance-forged",
    });
    let header = jws::header("auth+jwt", resource_kid.as_str());
    let mut invalid = vec![
        (
            "untrusted-issuer",
            "P-TOK-6",
            "an auth token from an issuer the resource does not trust",
            jws::sign(&resource_signer, &header, &forged_claims),
            signer.clone(),
        ),
        (
            "alg-none",
            "E§7.7",
            "an unsecured auth token",
            jws::unsecured("auth+jwt", "k", &forged_claims),
            signer.clone(),
        ),
    ];
    if let Some(token) = resource_token {
        invalid.push((
            "resource-token-instead",
            "P-ERR-1",
            "a resource token where the auth token belongs",
            token.to_owned(),
            signer.clone(),
        ));
    }
    let mut unbound = Vec::new();
    if let Some((grant, delegate)) = grant {
        let kid = jws::header_of(&grant.auth_token)
            .and_then(|h| claim(&h, "kid").map(str::to_owned))
            .unwrap_or_default();
        let genuine = jws::claims(&grant.auth_token).unwrap_or_default();
        let holder = delegate.key().clone();
        let wider = json!(format!("{} conformance.admin", t.scope));
        invalid.extend([
            (
                "tampered",
                "E§7.7",
                "the auth token's scope widened after signing",
                jws::tampered(&grant.auth_token, "scope", wider),
                holder.clone(),
            ),
            (
                "hs256-confusion",
                "E§7.7",
                "HS256 under the auth server's kid",
                jws::hs256_with_public_key("auth+jwt", &kid, holder.public_key(), &genuine),
                holder.clone(),
            ),
            (
                "forged-under-kid",
                "E§7.7",
                "its claims signed by another key under the auth server's kid",
                jws::sign(&key(), &jws::header("auth+jwt", &kid), &genuine),
                holder,
            ),
        ]);
        unbound.push((
            "other-key",
            "E§7.7",
            "a genuine auth token used by a key other than its cnf",
            grant.auth_token.clone(),
            key(),
        ));
    } else {
        run.skip(
            case(
                "resource.auth-token.genuine",
                "E§7.7",
                "misuse of a genuine auth token",
            ),
            "no auth token was obtained in the walk",
        );
    }
    let invalid_expect = Expect::Refused {
        status: 401,
        error: "invalid_auth_token",
        level: Some(Level::Authorized),
        no_resource_token: false,
    };
    for (cases, expect) in [
        (invalid, invalid_expect),
        (
            unbound,
            Expect::unauthorized("key_binding_failed", Level::Authorized),
        ),
    ] {
        for (name, rule, title, token, key) in cases {
            let identity = Identity::AuthToken {
                auth_token: token,
                key,
            };
            let finished = s
                .draft(&identity, "GET", t.authorized.clone(), None)
                .finish();
            run.exchange(
                hostile(format!("resource.auth-token.{name}"), rule, title),
                &finished.sent,
                expect.clone(),
                Some(&finished.base),
            )
            .await;
        }
    }
    // An agent token where an auth token is needed is the ordinary step-up.
    let delegate = run.host.delegate("delegate-step-up");
    let finished = s
        .draft(&delegate, "GET", t.authorized.clone(), None)
        .finish();
    run.exchange(
        case(
            "resource.auth-token.agent-token-instead",
            "P-ERR-1",
            "an agent token where an auth token is needed is asked to step up",
        ),
        &finished.sent,
        Expect::Refused {
            status: 401,
            error: "insufficient_auth_level",
            level: Some(Level::Authorized),
            no_resource_token: false,
        },
        Some(&finished.base),
    )
    .await;
}

/// Oversized and malformed structured fields: refused, never a 5xx.
async fn structured_fields(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let many: String = (0..300).map(|i| format!("\"x-c{i}\" ")).collect();
    let probes = vec![
        refused("input-16k", "P-ERR-2", "a Signature-Input of 16 KiB").after(|s, f| {
            let components = "\"a\" ".repeat(4096);
            s.set_header(
                "Signature-Input",
                format!("{}(\"@method\" {components});created=1", f.prefix()),
            );
        }),
        refused("input-300-components", "P-ERR-2", "300 covered components").after(move |s, f| {
            s.set_header(
                "Signature-Input",
                format!("{}({many});created=1", f.prefix()),
            )
        }),
        refused("nested-lists", "P-ERR-2", "inner lists opened 1,000 deep").after(|s, f| {
            s.set_header(
                "Signature-Input",
                format!("{}{}", f.prefix(), "(".repeat(1000)),
            )
        }),
        refused(
            "non-ascii",
            "P-ERR-2",
            "bytes above 0x7f in Signature-Input",
        )
        .after(|s, f| {
            s.set_header(
                "Signature-Input",
                format!("{}(\"@méthod\");created=1", f.prefix()),
            )
        }),
        refused("signature-64k", "P-ERR-2", "a Signature of 64 KiB").after(|s, f| {
            s.set_header(
                "Signature",
                format!("{}:{}:", f.prefix(), "A".repeat(65536)),
            )
        }),
        refused("signature-key-32k", "P-ERR-2", "a Signature-Key of 32 KiB").after(|s, f| {
            let x = "A".repeat(32768);
            s.set_header(
                "Signature-Key",
                format!("{}hwk;kty=\"OKP\";crv=\"Ed25519\";x=\"{x}\"", f.prefix()),
            );
        }),
        refused(
            "header-lines-200",
            "P-ERR-2",
            "Signature-Key repeated on 200 lines",
        )
        .after(|s, _| {
            let v = s.header("Signature-Key").unwrap_or_default().to_owned();
            for _ in 0..199 {
                s.headers.push(("Signature-Key".to_owned(), v.clone()));
            }
        }),
        refused("many-members", "P-ERR-2", "Signature with 1,000 members").after(|s, _| {
            let members: Vec<String> = (0..1000).map(|i| format!("s{i}=:AAAA:")).collect();
            s.set_header("Signature", members.join(", "));
        }),
        refused(
            "integer-overflow",
            "P-ERR-2",
            "created beyond the integer range",
        )
        .after(|s, f| {
            let components = "\"@method\" \"@authority\" \"@path\" \"signature-key\"";
            s.set_header(
                "Signature-Input",
                format!("{}({components});created=99999999999999999999", f.prefix()),
            );
        }),
    ];
    let server = run.host.agent_server();
    let identified = t.identified.clone();
    let fresh = move || s.draft(&server, "GET", identified.clone(), None);
    group(run, "structured", fresh, Expect::Rejected, probes).await;
}

/// Random visible bytes in every AAuth header, on a GET and a POST: any
/// answer but a server error. Seeded, so a failure can be reproduced.
async fn garbage(run: &mut Run, t: &Target) {
    let s = Signer::of(run);
    let server = run.host.agent_server();
    let mut rng = Lcg(0x00AA_0011_2026);
    let headers = [
        "Signature",
        "Signature-Input",
        "Signature-Key",
        "Content-Digest",
        "Nonce",
    ];
    let fragments = [
        "sig=(",
        "sig=:",
        "sig=jwt;jwt=",
        "sig=hwk;",
        "sig=(\"@method\"",
        ";created=",
        "\"",
        "\\",
        "=:",
        ",",
        "sig=()",
        "sig=jwks_uri;id=",
    ];
    for i in 0..24 {
        let header = headers
            .get(i % headers.len())
            .copied()
            .unwrap_or("Signature");
        let length = usize::try_from(rng.next() % 300).unwrap_or(1) + 1;
        let mut value = rng.visible(length);
        if i % 2 == 0 {
            let at = usize::try_from(rng.next()).unwrap_or(0) % fragments.len();
            value = format!("{}{value}", fragments.get(at).copied().unwrap_or("sig="));
        }
        let d = match &t.token_endpoint {
            Some(endpoint) if i % 3 == 0 => {
                s.form(&server, endpoint.clone(), &[("scope", t.scope.as_str())])
            }
            _ => s.draft(&server, "GET", t.identified.clone(), None),
        };
        let mut finished = d.finish();
        finished.sent.set_header(header, value.clone());
        run.exchange(
            hostile(
                format!("resource.garbage.{i:02}"),
                "P-ERR-2",
                format!("{header}: {}", cut(&value, 40)),
            ),
            &finished.sent,
            Expect::Below500,
            Some(&finished.base),
        )
        .await;
    }
}
