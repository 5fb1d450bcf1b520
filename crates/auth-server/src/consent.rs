//! The user-facing endpoint (E§9.5, profile: P-AS-4): login, then consent.
//!
//! ```text
//! GET /agent/auth?request_token&redirect_uri&state
//!   ─▶ request token known and fresh? redirect_uri = the bound one and
//!      registered in the agent's metadata? (else an error page: never a
//!      redirect to an unverified URI)
//!   ─▶ no session ─▶ login form ─▶ POST /agent/auth/login (CSRF) ─▶ 303 back
//!   ─▶ consent page (agent name and logo, resource, scopes + descriptions)
//!   ─▶ POST /agent/auth/consent (CSRF) ─▶ 303 redirect_uri?code=…&state=…
//!                                       or redirect_uri?error=access_denied&state=…
//!   ─▶ POST /agent/auth/logout (CSRF) ─▶ anonymous session ─▶ 303 back (login form)
//! ```
//!
//! Every visitor gets a session (anonymous until login) whose CSRF token
//! goes into every form; logging in replaces the session id. The cookie is
//! `HttpOnly`, `SameSite=Lax`, and `Secure` outside dev mode.

use aauth_http::browser::{
    PageError, cookie_value, html_response, redirect_uri_registered, see_other, with_cookie,
};
use aauth_http::server::{MAX_FORM_BYTES, unix_now};
use aauth_protocol::ids::Origin;
use aauth_protocol::metadata::AgentMetadata;
use argon2::{Argon2, PasswordVerifier as _};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use url::Url;

use crate::AppState;
use crate::config::is_identity_scope;
use crate::html::{self, Carry, ConsentView};
use crate::secret::{Secret, constant_time_eq};
use crate::store::{Answer, CodeRecord, PendingRequest, Session};

/// Longest user name typed back into the login form after a failure.
const MAX_KEPT_USERNAME: usize = 256;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "aauth_as_session";

/// A PHC string of a password nobody has, verified when the username is
/// unknown so that both failures take as long.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$QNKnkJXXPlqf2PLLkjXmrw$DhqQEuTTzxxuWkfgePCjzos0vaTHPS5YmPHDFf5g8QA";

fn now_secs() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

/// The query of `GET /agent/auth` (E§9.5 step 2).
#[derive(Debug, Deserialize)]
struct AuthQuery {
    request_token: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf_token: Option<String>,
    request_token: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// The consent form.
#[derive(Debug, Deserialize)]
struct ConsentForm {
    decision: Option<String>,
    csrf_token: Option<String>,
    request_token: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// A request token that is known, fresh, and whose `redirect_uri` checks out.
struct Checked {
    token: Secret,
    pending: PendingRequest,
    agent: Origin,
    metadata: std::sync::Arc<AgentMetadata>,
}

/// E§9.5: the request token must be live and "The `redirect_uri` MUST match
/// the value provided in the initial auth request"; P-AS-4: and be listed
/// in the agent's metadata.
async fn check_request(
    state: &AppState,
    request_token: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<Checked, PageError> {
    let token = request_token
        .and_then(Secret::received)
        .ok_or_else(|| PageError::bad("The link has no valid request_token."))?;
    let redirect_uri =
        redirect_uri.ok_or_else(|| PageError::bad("The link has no redirect_uri."))?;
    let Some(pending) = state
        .store()
        .request(&token.digest())
        .await
        .map_err(PageError::internal)?
    else {
        return Err(ended(state, &token).await);
    };
    if now_secs() >= pending.expires_at {
        return Err(PageError::bad("This authorization request has expired."));
    }
    if redirect_uri != pending.redirect_uri {
        return Err(PageError::bad(
            "The redirect_uri does not match the one the application sent with its request.",
        ));
    }
    let agent = Origin::parse(&pending.agent, state.mode()).map_err(PageError::internal)?;
    let metadata = state.discovery().agent_metadata(&agent).await.map_err(|e| {
        tracing::warn!(%agent, error = %e, "agent metadata unavailable");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "The application's metadata could not be fetched, so its redirect_uri cannot be checked.",
        )
    })?;
    let registered = metadata.redirect_uris.as_deref().unwrap_or_default();
    if !redirect_uri_registered(registered, redirect_uri) {
        return Err(PageError::bad(
            "The redirect_uri is not registered in the application's metadata.",
        ));
    }
    Ok(Checked {
        token,
        pending,
        agent,
        metadata,
    })
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, PageError> {
    let Some(id) = cookie_value(headers, SESSION_COOKIE).and_then(Secret::received) else {
        return Ok(None);
    };
    state
        .store()
        .session(&id.digest(), now_secs())
        .await
        .map_err(PageError::internal)
}

/// Creates a session and returns it with its `Set-Cookie` value.
async fn new_session(
    state: &AppState,
    username: Option<String>,
    replaces: Option<&str>,
) -> Result<(Session, HeaderValue), PageError> {
    let id = Secret::generate().map_err(PageError::internal)?;
    let csrf = Secret::generate().map_err(PageError::internal)?;
    let now = now_secs();
    let lifetime = state.config().session_lifetime;
    let session = Session {
        session_hash: id.digest(),
        username,
        csrf_token: csrf.expose().to_owned(),
        expires_at: now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
    };
    // Expired rows go whenever a session is made.
    state
        .store()
        .purge_expired(now)
        .await
        .map_err(PageError::internal)?;
    state
        .store()
        .insert_session(&session, replaces, now)
        .await
        .map_err(PageError::internal)?;
    let cookie = HeaderValue::from_str(&session_cookie(&id, lifetime, state.dev()))
        .map_err(PageError::internal)?;
    Ok((session, cookie))
}

/// P-AS-4: "session cookie: HttpOnly, SameSite=Lax, Secure outside dev".
fn session_cookie(id: &Secret, lifetime: u64, dev: bool) -> String {
    let secure = if dev { "" } else { "; Secure" };
    format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={lifetime}; HttpOnly; SameSite=Lax{secure}",
        id.expose()
    )
}

/// A redirect to a path on this server.
fn see_other_relative(location: &str) -> Result<Response, PageError> {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(PageError::internal)?,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn agent_name(checked: &Checked) -> String {
    checked
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| checked.agent.as_str().to_owned())
}

/// Descriptions of the identity scopes, which are the auth server's own.
fn identity_description(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Sign you in and learn your user identifier"),
        "profile" => Some("Your name"),
        "email" => Some("Your email address and whether it is verified"),
        _ => None,
    }
}

async fn consent_page(
    state: &AppState,
    checked: &Checked,
    carry: &Carry<'_>,
    username: &str,
) -> Response {
    let pending = &checked.pending;
    let is_self = pending.resource == pending.agent;
    // P-AS-4: "scopes with their descriptions (resource metadata
    // `scope_descriptions`)"; a resource that cannot be reached just shows
    // the scope names.
    let metadata = if is_self {
        None
    } else {
        match Origin::parse(&pending.resource, state.mode()) {
            Ok(resource) => match state.discovery().resource_metadata(&resource).await {
                Ok(metadata) => Some(metadata),
                Err(error) => {
                    tracing::warn!(%resource, %error, "resource metadata unavailable");
                    None
                }
            },
            Err(_) => None,
        }
    };
    let descriptions = metadata.as_ref().and_then(|m| m.scope_descriptions.clone());
    // Beside the URL, never instead of it: the name is the resource's own
    // claim (profile: the resource's name on the consent page).
    let resource_name = metadata.as_ref().and_then(|m| m.name.clone());
    let scopes = pending
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|scope| {
            let description = if is_identity_scope(scope) {
                identity_description(scope).map(str::to_owned)
            } else {
                descriptions
                    .as_ref()
                    .and_then(|d| d.get(scope))
                    .map(str::to_owned)
            };
            (scope, description)
        })
        .collect();
    // The caller a resource serves, named by its own metadata when it can
    // be fetched (the identifier is what was proven).
    let upstream = match pending.upstream_agent.as_deref() {
        None => None,
        Some(agent) => {
            let name = match Origin::parse(agent, state.mode()) {
                Ok(origin) => state
                    .discovery()
                    .agent_metadata(&origin)
                    .await
                    .ok()
                    .and_then(|m| m.name.clone()),
                Err(_) => None,
            };
            Some((name.unwrap_or_else(|| agent.to_owned()), agent))
        }
    };
    let name = agent_name(checked);
    let view = ConsentView {
        agent_name: &name,
        agent: checked.agent.as_str(),
        logo_uri: checked.metadata.logo_uri.as_ref().map(|u| u.as_str()),
        resource: &pending.resource,
        resource_name: resource_name.as_deref(),
        on_behalf_of: upstream
            .as_ref()
            .map(|(name, agent)| (name.as_str(), *agent)),
        is_self,
        scopes,
        username,
        delegate: pending.delegate_sub.as_deref(),
        issuer: state.issuer().as_str(),
        token_lifetime: u64::from(state.config().auth_token_lifetime),
        grant_lifetime: state.config().refresh_token_lifetime,
    };
    html_response(StatusCode::OK, html::consent(carry, &view))
}

/// The page for a request token that is no longer waiting: where its flow
/// ended when it was answered (the back button after an answer, a second
/// tab), else unknown or expired.
async fn ended(state: &AppState, token: &Secret) -> PageError {
    let now = now_secs();
    match state.store().answered(&token.digest(), now).await {
        Ok(Some(answered)) => {
            let ago = crate::html::duration(
                u64::try_from(now.saturating_sub(answered.answered_at)).unwrap_or(0),
            );
            let (verb, outcome) = if answered.answer.approved {
                ("approved", "it was given access to")
            } else {
                ("denied", "it was not given access to")
            };
            PageError::answered(format!(
                "This request was already answered: {} {verb} it {ago} ago for {}, and \
                 {outcome} {}. The application has been told.",
                answered.answer.username, answered.agent, answered.resource
            ))
        }
        Ok(None) => PageError::bad("This authorization request is unknown or has expired."),
        Err(error) => PageError::internal(error),
    }
}

/// `GET /agent/auth` (E§9.5 steps 2–3).
pub async fn show(State(state): State<AppState>, request: Request) -> Response {
    match show_inner(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn show_inner(state: &AppState, request: Request) -> Result<Response, PageError> {
    let query: AuthQuery = serde_urlencoded::from_str(request.uri().query().unwrap_or_default())
        .map_err(|_| PageError::bad("The link is malformed."))?;
    let checked = check_request(
        state,
        query.request_token.as_deref(),
        query.redirect_uri.as_deref(),
    )
    .await?;
    let (session, cookie) = match current_session(state, request.headers()).await? {
        Some(session) => (session, None),
        None => {
            let (session, cookie) = new_session(state, None, None).await?;
            (session, Some(cookie))
        }
    };
    let carry = Carry {
        request_token: checked.token.expose(),
        redirect_uri: &checked.pending.redirect_uri,
        state: query.state.as_deref(),
        csrf: &session.csrf_token,
    };
    let user = session
        .username
        .as_deref()
        .and_then(|name| state.policy().user(name));
    let response = match user {
        Some(user) => consent_page(state, &checked, &carry, &user.username).await,
        None => html_response(
            StatusCode::OK,
            html::login(&carry, &agent_name(&checked), None, None),
        ),
    };
    Ok(with_cookie(response, cookie))
}

async fn read_form<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, PageError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::bad("The form is malformed."))
}

fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| constant_time_eq(p.as_bytes(), session.csrf_token.as_bytes()))
}

/// The session a form was posted in, when the form carries that
/// session's CSRF token (P-AS-4: "CSRF token in every form").
async fn session_for_form(
    state: &AppState,
    headers: &HeaderMap,
    presented: Option<&str>,
) -> Result<Session, PageError> {
    let session = current_session(state, headers)
        .await?
        .ok_or_else(csrf_failed)?;
    if csrf_ok(&session, presented) {
        Ok(session)
    } else {
        Err(csrf_failed())
    }
}

fn csrf_failed() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this page. Go back and try again.",
    )
}

/// Password checks running at once. Each argon2 check takes its memory cost
/// (19 MiB by default): unbounded, a burst of logins could exhaust memory.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Checks a password against a PHC string off the async runtime, at most
/// four at a time; the others wait their turn.
async fn password_matches(hash: Option<String>, password: String) -> bool {
    let Ok(_permit) = PASSWORD_CHECKS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let (hash, known) = match hash {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// `POST /agent/auth/login`.
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    match login_inner(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn back_to_auth(
    request_token: &str,
    redirect_uri: &str,
    state: Option<&str>,
) -> Result<Response, PageError> {
    let mut pairs = vec![
        ("request_token", request_token),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    let query = serde_urlencoded::to_string(pairs).map_err(PageError::internal)?;
    see_other_relative(&format!("{}?{query}", crate::AUTH_PATH))
}

async fn login_inner(state: &AppState, request: Request) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let form: LoginForm = read_form(body).await?;
    let session = session_for_form(state, &parts.headers, form.csrf_token.as_deref()).await?;
    let checked = check_request(
        state,
        form.request_token.as_deref(),
        form.redirect_uri.as_deref(),
    )
    .await?;
    let username = form.username.unwrap_or_default();
    let user = state.policy().user(&username);
    let matches = password_matches(
        user.map(|u| u.password_hash().to_owned()),
        form.password.unwrap_or_default(),
    )
    .await;
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!(username = %username.chars().take(64).collect::<String>(), "failed login");
        let carry = Carry {
            request_token: checked.token.expose(),
            redirect_uri: &checked.pending.redirect_uri,
            state: form.state.as_deref(),
            csrf: &session.csrf_token,
        };
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            html::login(
                &carry,
                &agent_name(&checked),
                Some("Wrong username or password."),
                Some(&username.chars().take(MAX_KEPT_USERNAME).collect::<String>()),
            ),
        ));
    };
    // A new session id at login, replacing the anonymous one: a planted
    // anonymous cookie gains nothing.
    let (_, cookie) = new_session(
        state,
        Some(user.username.clone()),
        Some(&session.session_hash),
    )
    .await?;
    let response = back_to_auth(
        checked.token.expose(),
        &checked.pending.redirect_uri,
        form.state.as_deref(),
    )?;
    Ok(with_cookie(response, Some(cookie)))
}

/// `POST /agent/auth/consent`.
pub async fn decide(State(state): State<AppState>, request: Request) -> Response {
    match decide_inner(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `redirect_uri` with `pairs` appended to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Result<Response, PageError> {
    let mut url = Url::parse(redirect_uri).map_err(PageError::internal)?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    Ok(see_other(&url))
}

async fn decide_inner(state: &AppState, request: Request) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let form: ConsentForm = read_form(body).await?;
    let session = session_for_form(state, &parts.headers, form.csrf_token.as_deref()).await?;
    let user = session
        .username
        .as_deref()
        .and_then(|name| state.policy().user(name))
        .ok_or_else(|| PageError::new(StatusCode::FORBIDDEN, "Sign in first."))?;
    let checked = check_request(
        state,
        form.request_token.as_deref(),
        form.redirect_uri.as_deref(),
    )
    .await?;
    let approve = match form.decision.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(PageError::bad("Choose approve or deny.")),
    };
    let code = Secret::generate().map_err(PageError::internal)?;
    let now = now_secs();
    // The decision uses the request up (a second click finds nothing) and,
    // on approval, stores the code in the same transaction: a crash loses
    // neither the request nor the consent.
    let answer = Answer {
        approved: approve,
        username: user.username.clone(),
    };
    let pending = match state
        .store()
        .answer_request(
            &checked.token.digest(),
            &answer,
            // P-AS-5 / E§9.5: the code is bound to the request token and
            // redirect_uri, the agent and delegate, and the user.
            |pending| {
                approve.then(|| CodeRecord {
                    code_hash: code.digest(),
                    request_hash: pending.token_hash.clone(),
                    agent: pending.agent.clone(),
                    delegate_sub: pending.delegate_sub.clone(),
                    username: user.username.clone(),
                    resource: pending.resource.clone(),
                    scope: pending.scope.clone(),
                    redirect_uri: pending.redirect_uri.clone(),
                    expires_at: now.saturating_add(i64::from(state.config().code_lifetime)),
                })
            },
            now,
        )
        .await
        .map_err(PageError::internal)?
        .ok_or(())
    {
        Ok(pending) => pending,
        Err(()) => return Err(ended(state, &checked.token).await),
    };
    let state_param = form.state.as_deref();
    if !approve {
        tracing::info!(agent = %pending.agent, user = %user.username, "consent denied");
        let mut pairs = vec![("error", "access_denied")];
        if let Some(s) = state_param {
            pairs.push(("state", s));
        }
        return redirect_with(&pending.redirect_uri, &pairs);
    }
    tracing::info!(agent = %pending.agent, user = %user.username, "consent given");
    let mut pairs = vec![("code", code.expose())];
    if let Some(s) = state_param {
        pairs.push(("state", s));
    }
    redirect_with(&pending.redirect_uri, &pairs)
}

/// `POST /agent/auth/logout` (P-AS-4): "not you? sign out" on the consent
/// page. The signed-in session ends, an anonymous one replaces it, and the
/// browser goes back to the same request, now at the login form.
pub async fn logout(State(state): State<AppState>, request: Request) -> Response {
    match logout_inner(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn logout_inner(state: &AppState, request: Request) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let form: ConsentForm = read_form(body).await?;
    let session = session_for_form(state, &parts.headers, form.csrf_token.as_deref()).await?;
    let checked = check_request(
        state,
        form.request_token.as_deref(),
        form.redirect_uri.as_deref(),
    )
    .await?;
    let (_, cookie) = new_session(state, None, Some(&session.session_hash)).await?;
    if let Some(user) = &session.username {
        tracing::info!(%user, "signed out");
    }
    let response = back_to_auth(
        checked.token.expose(),
        &checked.pending.redirect_uri,
        form.state.as_deref(),
    )?;
    Ok(with_cookie(response, Some(cookie)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_are_secure_outside_dev_mode() {
        // profile: P-AS-4
        let id = Secret::generate().unwrap();
        let production = session_cookie(&id, 3600, false);
        assert!(
            production.ends_with("; HttpOnly; SameSite=Lax; Secure"),
            "{production}"
        );
        assert!(production.contains("Max-Age=3600"));
        let dev = session_cookie(&id, 3600, true);
        assert!(dev.ends_with("; HttpOnly; SameSite=Lax"), "{dev}");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; aauth_as_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }

    #[tokio::test]
    async fn unknown_users_and_wrong_passwords_fail_alike() {
        assert!(!password_matches(None, "x".into()).await);
        assert!(!password_matches(Some("not a phc".into()), "x".into()).await);
    }
}
