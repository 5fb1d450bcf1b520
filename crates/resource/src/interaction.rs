//! Resource-initiated user interaction (E§4.4, E§9.9; profile: P-UI-1..3):
//! when the call downstream needs the user, this resource asks its caller
//! to send them here, takes them through its own next hop, and sends them
//! back.
//!
//! ```text
//! agent ── GET /chain ──▶ R1 ── exchange ──▶ AS2: 400 interaction_required
//!   ◀── 401 interaction_required
//!       Agent-Auth: httpsig; user_interaction="R1/interaction?session=S"   (P-UI-1)
//! user ── GET /interaction?session=S&return_url=U ──▶ R1          (P-UI-2)
//!       U must be registered in the agent's metadata redirect_uris
//!   R1 ── GET downstream, as itself ──▶ R2: 401 + resource token
//!   R1 ── request_type=auth, redirect_uri=R1/interaction/callback ──▶ AS2: request_token
//!   ◀── 303 AS2's consent page (state), cookie naming S
//! user consents at AS2 ──▶ 303 R1/interaction/callback?code=…&state=…
//!   R1 ── request_type=code ──▶ AS2: an auth token for R1, kept for the caller
//!   ◀── 303 U            (U?error=access_denied when the user said no)
//! agent retries GET /chain ──▶ R1 finds the kept token by (agent, delegate,
//!   user) and calls R2 with it ──▶ 200                               (P-UI-3)
//! ```
//!
//! Chains bubble (P-UI-3): when R2 itself answers 401 with its own
//! `user_interaction` D, R1 opens a session of its own for it. The user
//! comes to R1's interaction URL, is sent to `D?return_url=R1/interaction/
//! callback` (which R2 checks against R1's `/.well-known/aauth-agent`), and
//! when R2 sends them back, R1 sends them on to U. No participant sees
//! another's interaction URL but its neighbours'.
//!
//! Sessions are 256-bit random ids, bound to the caller (agent, delegate,
//! the user of its token, and the chain of actors before it), live in
//! memory for ten minutes (profile: P-AS-8 allows memory), and end at the
//! callback or at the first failed attempt (E§9.9). A reload of the
//! interaction page sends the user to the same next page again. The
//! browser's return to the callback is tied to its session by a cookie set
//! on the way out, one per session (HttpOnly, SameSite=Lax, Secure outside
//! dev mode, named after this resource so that resources on one host do
//! not overwrite each other's); on the consent path the auth server's
//! `state` must match as well.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aauth_http::browser::{PageError, cookies, redirect_uri_registered, see_other, with_cookie};
use aauth_http::server::ErrorResponse;
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::error::{Condition, ErrorCode};
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::keys::{CryptoError, random_bytes, sha256};
use aauth_protocol::metadata::RedirectUri;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use moka::policy::EvictionPolicy;
use url::Url;

use crate::AppState;
use crate::caller::Binding;
use crate::downstream::{CallerToken, ConsentStart, Downstream, NeedsUser};

/// Where the user is sent (P-UI-1).
pub const INTERACTION_PATH: &str = "/interaction";
/// Where the user comes back from the next hop: registered in this
/// resource's agent metadata `redirect_uris` (P-MD-2).
pub const CALLBACK_PATH: &str = "/interaction/callback";
/// How long a session waits for the user (P-UI-1: 10 min).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Most memory the sessions may take, in (approximate) bytes. Beyond it the
/// least recently used go first, so a new session is always kept.
const MAX_SESSION_BYTES: u64 = 64 * 1024 * 1024;
/// Longest query accepted on the two pages.
const MAX_QUERY: usize = 8 * 1024;

/// A user's visit: where they go back to, where they were sent, the
/// `state` sent to the auth server for them, and when.
#[derive(Debug, Clone)]
struct Visit {
    return_url: Url,
    next: Url,
    state: Option<String>,
    at: Instant,
}

#[derive(Debug)]
struct Session {
    caller: Binding,
    /// What the user does through this resource.
    purpose: NeedsUser,
    visit: Mutex<Option<Visit>>,
}

/// Room kept for a session's visit (two URLs and a state), in bytes.
const VISIT_WEIGHT: usize = 2 * 1024;

impl Session {
    fn weight(&self) -> u32 {
        let onward = match &self.purpose {
            NeedsUser::Consent(caller) => caller.as_ref().map_or(0, CallerToken::weight),
            NeedsUser::Onward(url) => url.as_str().len(),
        };
        u32::try_from(self.caller.weight() + onward + VISIT_WEIGHT).unwrap_or(u32::MAX)
    }

    fn visit(&self) -> Option<Visit> {
        self.visit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_visit(&self, visit: Visit) {
        *self.visit.lock().unwrap_or_else(PoisonError::into_inner) = Some(visit);
    }
}

/// The interaction sessions of a running resource.
pub struct Interactions {
    sessions: moka::sync::Cache<String, Arc<Session>>,
    interaction_url: Url,
    callback_url: Url,
    /// Every session cookie's name starts so; the rest names the session.
    cookie_prefix: String,
    secure: bool,
}

impl fmt::Debug for Interactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interactions")
            .field("sessions", &self.sessions.entry_count())
            .field("cookie_prefix", &self.cookie_prefix)
            .finish_non_exhaustive()
    }
}

impl Interactions {
    /// Sessions of the resource `identifier`; cookies are `Secure` outside
    /// dev mode.
    pub fn new(identifier: &Origin, dev: bool) -> Result<Self, url::ParseError> {
        let base = Url::parse(identifier.as_str())?;
        let tag = sha256(identifier.as_str().as_bytes());
        let tag: String = tag.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            sessions: moka::sync::Cache::builder()
                .max_capacity(MAX_SESSION_BYTES)
                .weigher(|id: &String, session: &Arc<Session>| {
                    session
                        .weight()
                        .saturating_add(u32::try_from(id.len()).unwrap_or(u32::MAX))
                })
                .eviction_policy(EvictionPolicy::lru())
                .time_to_live(SESSION_LIFETIME)
                .build(),
            interaction_url: base.join(INTERACTION_PATH)?,
            callback_url: base.join(CALLBACK_PATH)?,
            cookie_prefix: format!("aauth-interaction-{tag}-"),
            secure: !dev,
        })
    }

    /// This resource's callback URL, as registered in its agent metadata.
    pub fn callback_url(&self) -> &Url {
        &self.callback_url
    }

    /// P-UI-1: a session for `caller`, and the 401 `interaction_required`
    /// that sends its user here.
    pub fn challenge(&self, caller: Binding, need: NeedsUser, why: &str) -> ErrorResponse {
        let Ok(id) = random_token() else {
            return ErrorResponse::new(Condition::ServerFault, "no randomness for a session");
        };
        self.sessions.insert(
            id.clone(),
            Arc::new(Session {
                caller,
                purpose: need,
                visit: Mutex::new(None),
            }),
        );
        let mut url = self.interaction_url.clone();
        url.query_pairs_mut().append_pair("session", &id);
        let description = format!(
            "{why}; send the user to the user_interaction URL with a registered return_url, \
             then retry"
        );
        match AgentAuth::user_interaction(url.as_str()) {
            Ok(challenge) => ErrorResponse::new(Condition::InteractionRequired, description)
                .with_challenge(challenge),
            Err(e) => ErrorResponse::new(Condition::ServerFault, format!("challenge: {e}")),
        }
    }

    fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.get(id)
    }

    fn close(&self, id: &str) {
        self.sessions.invalidate(id);
    }

    /// The cookie naming session `id` in a browser: one per session, so
    /// that two interactions in one browser do not overwrite each other.
    fn cookie_name(&self, id: &str) -> String {
        let tag = sha256(id.as_bytes());
        let tag: String = tag.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}{tag}", self.cookie_prefix)
    }

    fn set_cookie(&self, id: &str) -> Result<HeaderValue, PageError> {
        self.cookie(id, id, SESSION_LIFETIME.as_secs())
    }

    fn clear_cookie(&self, id: &str) -> Result<HeaderValue, PageError> {
        self.cookie(id, "", 0)
    }

    fn cookie(&self, id: &str, value: &str, max_age: u64) -> Result<HeaderValue, PageError> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path={INTERACTION_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(id),
        ))
        .map_err(PageError::internal)
    }

    /// The sessions this browser's cookies name, still alive, with their ids.
    fn sessions_of(&self, headers: &HeaderMap) -> Vec<(String, Arc<Session>)> {
        cookies(headers)
            .filter(|(name, _)| name.starts_with(&self.cookie_prefix))
            .filter_map(|(name, id)| {
                let session = self.sessions.get(id)?;
                // The cookie's name must be the one made for this id.
                (self.cookie_name(id) == name).then(|| (id.to_owned(), session))
            })
            .collect()
    }
}

/// 256 random bits, base64url: an interaction session id or a `state`.
pub fn random_token() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(aauth_protocol::b64::url_encode(bytes))
}

/// A 502 page: the next hop could not be reached or asked. Details go to
/// the log, not to whoever holds the link.
fn peer_failed(what: &str, error: &dyn fmt::Display) -> PageError {
    tracing::warn!(%error, "{what}");
    PageError::new(
        StatusCode::BAD_GATEWAY,
        format!("{what}. Return to the application and try again later."),
    )
}

/// The query's parameters; a repeated one is refused rather than guessed.
fn parameters(raw: Option<&str>) -> Result<HashMap<String, String>, PageError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_QUERY {
        return Err(PageError::bad("The link is too long."));
    }
    let mut out = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(PageError::bad(format!(
                "The link repeats the parameter {:?}.",
                name.chars().take(32).collect::<String>()
            )));
        }
    }
    Ok(out)
}

fn downstream(state: &AppState) -> Result<&Downstream, PageError> {
    state.downstream().ok_or_else(|| {
        PageError::new(
            StatusCode::NOT_FOUND,
            "This resource calls no other and never needs the user.",
        )
    })
}

const EXPIRED: &str = "This interaction is unknown, was already completed, or has expired (they last 10 minutes). \
     Return to the application and try again.";

/// `GET /interaction?session=…&return_url=…` (P-UI-2).
pub async fn visit(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    visit_inner(&state, raw.as_deref())
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn visit_inner(state: &AppState, raw: Option<&str>) -> Result<Response, PageError> {
    let downstream = downstream(state)?;
    let interactions = state.interactions();
    let query = parameters(raw)?;
    let id = query
        .get("session")
        .ok_or_else(|| PageError::bad("The link has no session."))?;
    let session = interactions
        .session(id)
        .ok_or_else(|| PageError::bad(EXPIRED))?;
    // E§9.9: a failed attempt ends the session.
    let return_url = match check_return_url(state, &session.caller, query.get("return_url")).await {
        Ok(url) => url,
        Err(error) => {
            if error.status() == StatusCode::BAD_REQUEST {
                interactions.close(id);
            }
            return Err(error);
        }
    };
    // A reload: the same next page again, nothing asked twice.
    if let Some(visit) = session.visit() {
        if visit.return_url != return_url {
            interactions.close(id);
            return Err(PageError::bad(
                "This interaction is already under way for another return_url.",
            ));
        }
        return Ok(with_cookie(
            see_other(&visit.next),
            Some(interactions.set_cookie(id)?),
        ));
    }
    let callback = interactions.callback_url();
    let (next, sent_state) = match &session.purpose {
        NeedsUser::Consent(caller) => {
            let state = random_token().map_err(PageError::internal)?;
            match downstream
                .start_consent(callback, &state, caller.as_ref())
                .await
            {
                Ok(ConsentStart::Granted(grant)) => {
                    // The auth server needed no one after all.
                    downstream.keep_grant(session.caller.clone(), grant).await;
                    interactions.close(id);
                    return Ok(see_other(&return_url));
                }
                Ok(ConsentStart::Consent(url)) => (url, Some(state)),
                Err(error) => {
                    return Err(peer_failed(
                        "The next service could not be asked for the user's consent",
                        &error,
                    ));
                }
            }
        }
        NeedsUser::Onward(target) => {
            let mut url = target.clone();
            url.query_pairs_mut()
                .append_pair("return_url", callback.as_str());
            (url, None)
        }
    };
    tracing::info!(next = %next.origin().ascii_serialization(), "sending the user on (P-UI-2)");
    session.set_visit(Visit {
        return_url,
        next: next.clone(),
        state: sent_state,
        at: Instant::now(),
    });
    Ok(with_cookie(
        see_other(&next),
        Some(interactions.set_cookie(id)?),
    ))
}

/// P-UI-2: "`return_url` must be HTTPS (or loopback http per P-AS-4, or any
/// dev-mode origin) and listed in the agent's metadata `redirect_uris`
/// (same matching as P-AS-4)".
async fn check_return_url(
    state: &AppState,
    caller: &Binding,
    return_url: Option<&String>,
) -> Result<Url, PageError> {
    let return_url = return_url.ok_or_else(|| PageError::bad("The link has no return_url."))?;
    let mode = if state.settings().dev {
        OriginMode::Dev
    } else {
        OriginMode::Production
    };
    RedirectUri::parse(return_url, mode)
        .map_err(|e| PageError::bad(format!("The return_url is not acceptable: {e}.")))?;
    let metadata = state
        .discovery()
        .agent_metadata(&caller.agent)
        .await
        .map_err(|e| peer_failed("The application's metadata could not be read", &e))?;
    let registered = metadata.redirect_uris.as_deref().unwrap_or_default();
    if !redirect_uri_registered(registered, return_url) {
        return Err(PageError::bad(format!(
            "The return_url is not one of the redirect_uris {} registers.",
            caller.agent
        )));
    }
    Url::parse(return_url).map_err(|e| PageError::bad(format!("The return_url: {e}.")))
}

/// `GET /interaction/callback`: the user is back from the next hop.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    callback_inner(&state, &headers, raw.as_deref())
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn callback_inner(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Response, PageError> {
    let downstream = downstream(state)?;
    let interactions = state.interactions();
    let query = parameters(raw)?;
    let sent_state = query.get("state").map(String::as_str);
    // The browser's own sessions, those it was sent on from: the consent
    // one whose state came back, or else the one it last left for a
    // downstream's interaction page.
    let mine: Vec<_> = interactions
        .sessions_of(headers)
        .into_iter()
        .filter_map(|(id, session)| session.visit().map(|visit| (id, session, visit)))
        .collect();
    if mine.is_empty() {
        return Err(PageError::bad(
            "This browser has no interaction in progress here (it needs cookies), or it has \
             expired. Return to the application and try again.",
        ));
    }
    let found = match sent_state {
        Some(sent) => mine
            .iter()
            .find(|(_, _, visit)| visit.state.as_deref() == Some(sent)),
        None => mine
            .iter()
            .filter(|(_, session, _)| matches!(session.purpose, NeedsUser::Onward(_)))
            .max_by_key(|(_, _, visit)| visit.at),
    };
    let Some((id, session, visit)) = found.cloned() else {
        // E§9.9: a failed attempt ends the sessions it could have been for.
        for (id, session, _) in &mine {
            if matches!(session.purpose, NeedsUser::Consent(_)) {
                interactions.close(id);
            }
        }
        return Err(PageError::bad(
            "The state does not match any this resource sent; start again from the application.",
        ));
    };
    interactions.close(&id);
    let error = query.get("error").map(String::as_str);
    let outcome = match &session.purpose {
        NeedsUser::Consent(_) => match (error, query.get("code")) {
            (Some(error), _) => Err(pass_on(error)),
            (None, Some(code)) => {
                match downstream
                    .finish_consent(code, interactions.callback_url())
                    .await
                {
                    Ok(grant) => {
                        downstream.keep_grant(session.caller.clone(), grant).await;
                        Ok(())
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the code could not be exchanged");
                        Err(ErrorCode::ServerError)
                    }
                }
            }
            (None, None) => {
                return Err(PageError::bad("The link carries neither code nor error."));
            }
        },
        NeedsUser::Onward(_) => error.map_or(Ok(()), |e| Err(pass_on(e))),
    };
    let mut back = visit.return_url;
    if let Err(code) = &outcome {
        back.query_pairs_mut().append_pair("error", code.as_str());
    }
    tracing::info!(
        outcome = outcome.map_or_else(|e| e.as_str().to_owned(), |()| "done".to_owned()),
        "sending the user back (P-UI-2)"
    );
    Ok(with_cookie(
        see_other(&back),
        Some(interactions.clear_cookie(&id)?),
    ))
}

/// The `error` passed back to the agent: the user's refusal as
/// `access_denied` (P-UI-2), anything else as `server_error`.
fn pass_on(error: &str) -> ErrorCode {
    if error == ErrorCode::AccessDenied.as_str() {
        ErrorCode::AccessDenied
    } else {
        tracing::warn!(
            error = %error.chars().take(64).collect::<String>(),
            "the next hop sent the user back with an error"
        );
        ErrorCode::ServerError
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    fn interactions(dev: bool) -> Interactions {
        Interactions::new(
            &Origin::parse("http://127.0.0.1:8080", OriginMode::Dev).unwrap(),
            dev,
        )
        .unwrap()
    }

    fn caller() -> Binding {
        Binding {
            agent: Origin::parse("https://agent.example", OriginMode::Production).unwrap(),
            delegate: Some("d1".to_owned()),
            user: Some("alice".to_owned()),
            act: None,
        }
    }

    #[test]
    fn a_challenge_opens_a_256_bit_session_on_this_resource() {
        // profile: P-UI-1
        let interactions = interactions(true);
        let error = interactions.challenge(caller(), NeedsUser::Consent(None), "why");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        let response = error.into_response();
        let header = response.headers()["agent-auth"]
            .to_str()
            .unwrap()
            .to_owned();
        let challenge = AgentAuth::parse(&header).unwrap();
        let url = Url::parse(challenge.user_interaction_url().unwrap()).unwrap();
        assert_eq!(url.origin().ascii_serialization(), "http://127.0.0.1:8080");
        assert_eq!(url.path(), INTERACTION_PATH);
        let (name, id) = url.query_pairs().next().unwrap();
        assert_eq!(name, "session");
        assert_eq!(id.len(), 43);
        assert_eq!(interactions.session(&id).unwrap().caller, caller());
    }

    #[test]
    fn session_cookies_are_named_per_resource_and_session_and_secure_outside_dev() {
        let dev = interactions(true);
        let set = dev.set_cookie("abc").unwrap();
        let set = set.to_str().unwrap();
        let name = dev.cookie_name("abc");
        assert!(name.starts_with("aauth-interaction-"));
        assert_eq!(
            set,
            format!("{name}=abc; Path=/interaction; Max-Age=600; HttpOnly; SameSite=Lax")
        );
        assert_ne!(dev.cookie_name("abd"), name);
        let cleared = dev.clear_cookie("abc").unwrap();
        assert_eq!(
            cleared.to_str().unwrap(),
            format!("{name}=; Path=/interaction; Max-Age=0; HttpOnly; SameSite=Lax")
        );
        let production = interactions(false);
        for cookie in [production.set_cookie("abc"), production.clear_cookie("abc")] {
            assert!(cookie.unwrap().to_str().unwrap().ends_with("; Secure"));
        }
        let other = Interactions::new(
            &Origin::parse("http://127.0.0.1:8081", OriginMode::Dev).unwrap(),
            true,
        )
        .unwrap();
        assert_ne!(other.cookie_name("abc"), name, "per resource");
    }

    #[test]
    fn a_browser_finds_only_sessions_its_cookies_name_correctly() {
        let interactions = interactions(true);
        let error = interactions.challenge(caller(), NeedsUser::Consent(None), "why");
        let header = error.into_response().headers()["agent-auth"]
            .to_str()
            .unwrap()
            .to_owned();
        let url = Url::parse(
            AgentAuth::parse(&header)
                .unwrap()
                .user_interaction_url()
                .unwrap(),
        )
        .unwrap();
        let id = url.query_pairs().next().unwrap().1.into_owned();
        let headers = |cookie: String| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
            headers
        };
        let right = format!("other=1; {}={id}", interactions.cookie_name(&id));
        assert_eq!(interactions.sessions_of(&headers(right)).len(), 1);
        // The id under another session's cookie name, or an unknown id.
        let wrong_name = format!("{}={id}", interactions.cookie_name("x"));
        assert!(interactions.sessions_of(&headers(wrong_name)).is_empty());
        let unknown = format!("{}=x", interactions.cookie_name("x"));
        assert!(interactions.sessions_of(&headers(unknown)).is_empty());
    }

    #[test]
    fn random_tokens_are_256_bits_and_differ() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn repeated_or_huge_parameters_are_refused() {
        assert!(parameters(Some("session=a&return_url=b")).is_ok());
        assert!(parameters(None).unwrap().is_empty());
        assert!(parameters(Some("session=a&session=b")).is_err());
        assert!(parameters(Some(&"x".repeat(MAX_QUERY + 1))).is_err());
    }

    #[test]
    fn only_a_refusal_passes_on_as_access_denied() {
        // profile: P-UI-2
        assert_eq!(pass_on("access_denied"), ErrorCode::AccessDenied);
        assert_eq!(pass_on("server_error"), ErrorCode::ServerError);
        assert_eq!(pass_on("<script>"), ErrorCode::ServerError);
    }
}
