//! An agent server under test: its metadata and JWKS, delegate enrollment
//! with the one-time code given on the command line (P-DEL-1), the agent
//! token it issues, and renewal with a new key (P-DEL-2). Every refusal
//! comes before the one good enrollment, since a refused enrollment must
//! not use the code up.

use aauth_http::client::Identity;
use aauth_protocol::challenge::Level;
use serde_json::{Value, json};

use super::{
    Signer, all_of, at, claim, fetch_json, fetch_jwks, is_key, jwks_is_public, key, signed,
    verify_token,
};
use aauth_http::server::unix_now;

use crate::craft::fresh_nonce;
use crate::jws;
use crate::profile::AgentServerTarget;
use crate::run::{Expect, Run, case, hostile};
use crate::wire::Sent;

/// Runs every agent server check.
pub(super) async fn run(run: &mut Run, target: &AgentServerTarget) {
    let s = Signer::of(run);
    run.wire.allow(&target.url);
    let origin = target.url.origin().ascii_serialization();
    let metadata_url = at(&target.url, "/.well-known/aauth-agent");
    let document = fetch_json(run, &metadata_url).await;
    let jwks_url = document
        .as_ref()
        .ok()
        .and_then(|d| super::url_member(d, "jwks_uri").ok());
    run.verdict(
        case(
            "agent-server.discovery.metadata",
            "E§8.1",
            "metadata names the agent and its JWKS",
        ),
        format!("GET {metadata_url}"),
        format!("agent = {origin}, jwks_uri"),
        document.and_then(|d| {
            all_of(
                &[
                    (
                        "agent is not the origin",
                        claim(&d, "agent") == Some(&origin),
                    ),
                    ("no usable jwks_uri", jwks_url.is_some()),
                ],
                format!("agent {:?}", claim(&d, "agent").unwrap_or_default()),
            )
        }),
    );
    let Some(jwks_url) = jwks_url else { return };
    run.wire.allow_same_host(&jwks_url, &target.url);
    let jwks_doc = fetch_json(run, &jwks_url).await;
    run.verdict(
        case(
            "agent-server.discovery.jwks",
            "E§8.1",
            "the JWKS holds public keys only",
        ),
        format!("GET {jwks_url}"),
        "a JWKS with at least one key and no private members",
        jwks_doc.and_then(|d| jwks_is_public(&d)),
    );

    let enroll = at(&target.url, &target.enroll_path);
    let renew = at(&target.url, &target.renew_path);
    let fresh = key();
    let hwk = Identity::Hwk(fresh.clone());
    let code = target.code.as_str();
    let bad = || Expect::bad_signature(Level::Pseudonymous);

    // Refusals first: none may use the code up.
    let mut unsigned = Sent::new("POST", enroll.clone());
    unsigned.set_header("Content-Type", "application/x-www-form-urlencoded");
    unsigned.body = format!("code={code}").into_bytes();
    run.exchange(
        hostile(
            "agent-server.enroll.unsigned",
            "P-DEL-1",
            "an unsigned enrollment",
        ),
        &unsigned,
        bad(),
        None,
    )
    .await;
    let (mut sent, base) = signed(&s.form(&hwk, enroll.clone(), &[("code", code)]));
    sent.remove_header("Nonce");
    run.exchange(
        hostile(
            "agent-server.enroll.no-nonce",
            "P-SIG-6",
            "an enrollment without its Nonce",
        ),
        &sent,
        bad(),
        Some(&base),
    )
    .await;
    let mut tampered = s.form(&hwk, enroll.clone(), &[("code", code)]);
    tampered.key = key();
    run.send(
        hostile(
            "agent-server.enroll.wrong-key",
            "P-DEL-1",
            "an enrollment signed by a key other than the hwk it names",
        ),
        &tampered,
        bad(),
    )
    .await;
    run.send(
        hostile(
            "agent-server.enroll.not-hwk",
            "P-DEL-1",
            "an enrollment signed as another agent server (jwks_uri), not the new key",
        ),
        &s.form(&run.host.agent_server(), enroll.clone(), &[("code", code)]),
        bad(),
    )
    .await;
    run.send(
        hostile(
            "agent-server.enroll.wrong-code",
            "P-DEL-1",
            "an enrollment code never minted",
        ),
        &s.form(&hwk, enroll.clone(), &[("code", "conformance-wrong-code")]),
        Expect::refused(400, "invalid_grant"),
    )
    .await;
    run.send(
        hostile("agent-server.enroll.empty-code", "P-DEL-1", "an empty code"),
        &s.form(&hwk, enroll.clone(), &[("code", "")]),
        Expect::refused(400, "invalid_request"),
    )
    .await;
    let big = "a".repeat(70 * 1024);
    run.send(
        hostile(
            "agent-server.enroll.oversized",
            "P-ERR-1",
            "a form over 64 KiB",
        ),
        &s.form(&hwk, enroll.clone(), &[("code", &big)]),
        Expect::refused(413, "invalid_request"),
    )
    .await;

    // The good enrollment.
    let (sent, base) = signed(&s.form(&hwk, enroll.clone(), &[("code", code)]));
    let answer = run
        .exchange(
            case(
                "agent-server.enroll.valid",
                "P-DEL-1",
                "the code enrolls the new key and answers an agent token",
            ),
            &sent,
            Expect::Success,
            Some(&base),
        )
        .await;
    run.exchange(
        hostile(
            "agent-server.enroll.replayed",
            "P-SIG-6",
            "the same enrollment request again",
        ),
        &sent,
        Expect::unauthorized("replayed_nonce", Level::Pseudonymous),
        Some(&base),
    )
    .await;
    run.send(
        hostile(
            "agent-server.enroll.code-reused",
            "P-DEL-1",
            "the used code with another key",
        ),
        &s.form(&Identity::Hwk(key()), enroll.clone(), &[("code", code)]),
        Expect::refused(400, "invalid_grant"),
    )
    .await;

    let Some(answer) = answer.filter(|a| a.status == 200) else {
        return;
    };
    let agent_token = answer.string("agent_token").unwrap_or_default().to_owned();
    let sub = answer.string("sub").map(str::to_owned);
    let jwks = fetch_jwks(run, &jwks_url).await;
    let claims = jwks.and_then(|jwks| verify_token(&agent_token, &jwks));
    run.verdict(
        case("agent-server.agent-token.claims", "E§5.3", "the agent token names the agent, the delegate and binds the new key"),
        "the agent_token answered",
        "agent+jwt signed by a key of the JWKS; iss = the agent, sub, cnf.jwk = the enrolled key, exp",
        claims.clone().and_then(|(header, claims)| {
            all_of(
                &[
                    ("typ is not agent+jwt", claim(&header, "typ") == Some("agent+jwt")),
                    ("iss is not the agent", claim(&claims, "iss") == Some(&origin)),
                    ("sub differs from the answer's", sub.is_none() || claim(&claims, "sub") == sub.as_deref()),
                    ("no sub", claim(&claims, "sub").is_some()),
                    ("cnf.jwk is not the enrolled key", is_key(claims.get("cnf").and_then(|c| c.get("jwk")), &fresh)),
                    ("exp is not in the future", claims.get("exp").and_then(Value::as_u64).is_some_and(|e| e > unix_now())),
                ],
                format!("sub {:?}", claim(&claims, "sub").unwrap_or_default()),
            )
        }),
    );

    // Renewal with a new key.
    let delegate = Identity::Delegate {
        agent_token: agent_token.clone(),
        key: fresh.clone(),
    };
    let renewal = |new: &aauth_protocol::keys::SigningKey,
                   prover: &aauth_protocol::keys::SigningKey,
                   proof_nonce: Option<&str>,
                   signer: &Identity| {
        let nonce = fresh_nonce();
        let proof = jws::sign_bytes(
            prover,
            &json!({"alg": "EdDSA"}),
            proof_nonce.unwrap_or(&nonce).as_bytes(),
        );
        let new_jwk = new.public_key().to_json_value().to_string();
        let mut d = s.form(
            signer,
            renew.clone(),
            &[("new_jwk", &new_jwk), ("new_key_proof", &proof)],
        );
        d.set_header("Nonce", nonce);
        d
    };
    let next = key();
    let stranger = key();
    run.send(
        hostile(
            "agent-server.renew.proof-other-key",
            "P-DEL-2",
            "a new-key proof signed by another key",
        ),
        &renewal(&next, &stranger, None, &delegate),
        Expect::refused(400, "invalid_grant"),
    )
    .await;
    run.send(
        hostile(
            "agent-server.renew.proof-other-nonce",
            "P-DEL-2",
            "a new-key proof over another Nonce",
        ),
        &renewal(
            &next,
            &next,
            Some("conformance-other-nonce-value"),
            &delegate,
        ),
        Expect::refused(400, "invalid_grant"),
    )
    .await;
    run.send(
        hostile(
            "agent-server.renew.pseudonymous",
            "P-DEL-2",
            "a renewal signed as hwk, without the agent token",
        ),
        &renewal(&next, &next, None, &Identity::Hwk(fresh.clone())),
        Expect::unauthorized("insufficient_auth_level", Level::Identified),
    )
    .await;
    let forged = Identity::Delegate {
        agent_token: jws::tampered(&agent_token, "sub", json!("delegate-someone-else")),
        key: fresh.clone(),
    };
    run.send(
        hostile(
            "agent-server.renew.tampered-token",
            "E§5.7",
            "a renewal with a tampered agent token",
        ),
        &renewal(&next, &next, None, &forged),
        Expect::unauthorized("invalid_agent_token", Level::Identified),
    )
    .await;
    let renewed = run
        .send(
            case(
                "agent-server.renew.valid",
                "P-DEL-2",
                "renewal answers an agent token for the new key with the same sub",
            ),
            &renewal(&next, &next, None, &delegate),
            Expect::Success,
        )
        .await;
    if let Some(renewed) = renewed.filter(|r| r.status == 200) {
        let token = renewed.string("agent_token").unwrap_or_default().to_owned();
        let old_sub = claims
            .ok()
            .and_then(|(_, c)| claim(&c, "sub").map(str::to_owned));
        let jwks = fetch_jwks(run, &jwks_url).await;
        run.verdict(
            case(
                "agent-server.renew.claims",
                "E§5.6",
                "the renewed token keeps sub and binds the new key",
            ),
            "the agent_token answered to the renewal",
            "the same sub; cnf.jwk = the new key",
            jwks.and_then(|jwks| verify_token(&token, &jwks))
                .and_then(|(_, c)| {
                    all_of(
                        &[
                            (
                                "sub changed",
                                claim(&c, "sub").map(str::to_owned) == old_sub,
                            ),
                            (
                                "cnf.jwk is not the new key",
                                is_key(c.get("cnf").and_then(|x| x.get("jwk")), &next),
                            ),
                        ],
                        format!("sub {:?}", claim(&c, "sub").unwrap_or_default()),
                    )
                }),
        );
    }
}
