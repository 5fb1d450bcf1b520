//! `token-requests.json`: the token endpoint's form body (E§9.3, E§9.6,
//! E§9.7, E§9.10, profile: P-AS-1, P-AS-2, P-AS-7, P-ERR-1): what an auth
//! server reads from each body, or the error it answers before looking at
//! anything else.

use std::collections::BTreeMap;

use aauth_protocol::token_request::{AuthTarget, TokenRequest};

use crate::build::unique_names;
use crate::schema::{TokenRequestCase, TokenRequestValue, VectorFile};
use crate::world::World;
use crate::{Report, Result, SCHEMA_VERSION, ensure, parse_file};

/// The request type and the parameters read, by name.
fn value_of(request: &TokenRequest) -> TokenRequestValue {
    let mut params = BTreeMap::new();
    let mut put = |name: &str, value: &str| {
        params.insert(name.to_owned(), value.to_owned());
    };
    match request {
        TokenRequest::Auth {
            target,
            redirect_uri,
            upstream_token,
        } => {
            match target {
                AuthTarget::ResourceToken(token) => put("resource_token", token),
                AuthTarget::Scope(scope) => put("scope", &scope.to_string()),
                AuthTarget::AuthRequestUrl(url) => put("auth_request_url", url),
            }
            if let Some(uri) = redirect_uri {
                put("redirect_uri", uri);
            }
            if let Some(token) = upstream_token {
                put("upstream_token", token.expose());
            }
        }
        TokenRequest::Code { code, redirect_uri } => {
            put("code", code.expose());
            if let Some(uri) = redirect_uri {
                put("redirect_uri", uri);
            }
        }
        TokenRequest::Refresh { refresh_token } => put("refresh_token", refresh_token.expose()),
        TokenRequest::Exchange {
            resource_token,
            upstream_token,
        } => {
            put("resource_token", resource_token);
            put("upstream_token", upstream_token.expose());
        }
    }
    TokenRequestValue {
        request_type: request.request_type().to_owned(),
        params,
    }
}

/// Reads `body`: the value, or the wire code and our description.
fn read(body: &str) -> std::result::Result<TokenRequestValue, (String, String)> {
    TokenRequest::from_form(body.as_bytes())
        .map(|request| value_of(&request))
        .map_err(|e| (e.condition().wire().code.as_str().to_owned(), e.to_string()))
}

fn case(name: &str, description: &str, body: &str) -> TokenRequestCase {
    let (expect, error, detail) = match read(body) {
        Ok(value) => (Some(value), None, None),
        Err((code, detail)) => (None, Some(code), Some(detail)),
    };
    TokenRequestCase {
        name: name.into(),
        description: description.into(),
        body: body.into(),
        expect,
        error,
        detail,
    }
}

pub(crate) fn generate(world: &World) -> Result<VectorFile<TokenRequestCase>> {
    let rt = crate::negative::resource_token_for_challenge(world)?;
    let callback = "http%3A%2F%2F127.0.0.1%3A8400%2Fcallback";
    let c = case;
    let cases = vec![
        c(
            "auth-resource-token",
            "E§9.3: access to a resource, described by its resource token; redirect_uri for the user's return",
            &format!("request_type=auth&resource_token={rt}&redirect_uri={callback}"),
        ),
        c(
            "auth-scope",
            "E§9.4: access to the agent itself (SSO) at a scope; '+' is a space in a form body",
            "request_type=auth&scope=openid+profile+email",
        ),
        c(
            "auth-scope-percent-encoded",
            "a form body's percent-encoding is decoded before the scope is read",
            "request_type=auth&scope=openid%20profile",
        ),
        c(
            "auth-request-url",
            "E§11's auth_request_url is read as a target; this profile's auth server then refuses it (P-TOK-7)",
            "request_type=auth&auth_request_url=https%3A%2F%2Fresource.example%2Freq",
        ),
        c(
            "auth-with-upstream-token",
            "an extension of this profile: a resource asking for its own grant with the user while it serves a caller sends that caller's auth token, so that the consent page can name the caller; an auth server that does not know it ignores it",
            &format!(
                "request_type=auth&resource_token={rt}&redirect_uri={callback}&upstream_token=eyJhbGciOiJFZERTQSJ9.e30.c2ln"
            ),
        ),
        c(
            "auth-upstream-token-repeated",
            "a parameter given twice is refused, upstream_token included",
            &format!(
                "request_type=auth&resource_token={rt}&upstream_token=a.b.c&upstream_token=d.e.f"
            ),
        ),
        c(
            "auth-unknown-parameter-ignored",
            "form bodies are extensible: a parameter no request type reads is ignored",
            "request_type=auth&scope=data.read&prompt=none",
        ),
        c(
            "auth-no-target",
            "P-AS-2: request_type=auth needs exactly one of resource_token or scope",
            "request_type=auth&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback",
        ),
        c(
            "auth-two-targets",
            "P-AS-2: exactly one of resource_token or scope, never both",
            &format!("request_type=auth&scope=data.read&resource_token={rt}"),
        ),
        c(
            "auth-bad-scope",
            "a scope is space-separated scope tokens (RFC 6749 §3.3): a control character is refused",
            "request_type=auth&scope=data.read%0A",
        ),
        c(
            "code",
            "E§9.6: the code from the consent redirect, with the redirect_uri the request was bound to (P-AS-5)",
            &format!("request_type=code&code=Q2hvb3NlIGEgcmFuZG9tIGNvZGU&redirect_uri={callback}"),
        ),
        c(
            "code-percent-encoded",
            "a code's reserved characters arrive percent-encoded and are read decoded",
            "request_type=code&code=a%2Bb%2Fc%3D",
        ),
        c(
            "code-missing",
            "E§9.6: request_type=code needs the code",
            "request_type=code",
        ),
        c(
            "code-repeated",
            "a parameter given twice is refused, not read as its first or last value",
            "request_type=code&code=first&code=second",
        ),
        c(
            "refresh",
            "E§9.7: a refresh token buys a new auth token",
            "request_type=refresh&refresh_token=cmVmcmVzaC10b2tlbg",
        ),
        c(
            "refresh-missing",
            "E§9.7: request_type=refresh needs the refresh token",
            "request_type=refresh",
        ),
        c(
            "exchange",
            "E§9.10, P-AS-7: the downstream resource token, and the auth token the caller received, in the form",
            &format!(
                "request_type=exchange&resource_token={rt}&upstream_token=eyJhbGciOiJFZERTQSJ9.e30.c2ln"
            ),
        ),
        c(
            "exchange-with-scope",
            "E§9.10: an exchange takes its scope from the resource token; a scope of its own is refused",
            &format!(
                "request_type=exchange&resource_token={rt}&upstream_token=a.b.c&scope=data.write"
            ),
        ),
        c(
            "exchange-without-upstream-token",
            "P-AS-7: the upstream token travels in the form",
            &format!("request_type=exchange&resource_token={rt}"),
        ),
        c(
            "no-request-type",
            "E§9.3: every request names its request_type",
            "scope=data.read",
        ),
        c("empty-body", "an empty body has no request_type", ""),
        c(
            "unsupported-request-type",
            "P-ERR-1: a request_type the server does not serve is unsupported_request_type",
            "request_type=client_credentials",
        ),
        c(
            "request-type-repeated",
            "two request types in one body are refused, whichever would come first",
            "request_type=auth&request_type=refresh&refresh_token=x",
        ),
        c(
            "request-type-case-sensitive",
            "request_type values are compared exactly",
            "request_type=AUTH&scope=data.read",
        ),
    ];
    Ok(VectorFile {
        description: "The token endpoint's form body (application/x-www-form-urlencoded, E§9.3–E§9.10, P-AS-1, P-AS-2, P-AS-7): the request type and parameters an auth server reads from it, or the P-ERR-1 error it answers for the body alone, before the policy or any token is looked at.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

pub(crate) fn check(contents: &str, report: &mut Report) -> Result<()> {
    let file: VectorFile<TokenRequestCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        let outcome = match (read(&c.body), &c.expect, &c.error) {
            (Ok(got), Some(want), None) => (|| {
                ensure(&got == want, || format!("read as {got:?}"))?;
                // What is written from the value reads back the same.
                let request = TokenRequest::from_form(c.body.as_bytes())
                    .map_err(|e| crate::VectorError(e.to_string()))?;
                let again = read(&request.to_form());
                ensure(again.as_ref() == Ok(&got), || {
                    format!("written back, reads as {again:?}")
                })
            })(),
            (Err((code, detail)), None, Some(want)) => ensure(
                &code == want && c.detail.as_deref() == Some(detail.as_str()),
                || format!("refused with {code}: {detail}"),
            ),
            (Ok(got), _, _) => Err(crate::VectorError(format!("accepted as {got:?}"))),
            (Err((code, detail)), _, _) => {
                Err(crate::VectorError(format!("refused with {code}: {detail}")))
            }
        };
        report.record("token-requests.json", &c.name, outcome);
    }
    Ok(())
}
