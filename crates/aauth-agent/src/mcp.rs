//! MCP over AAuth: rmcp's streamable HTTP client transport with every
//! request sent by an [`Agent`] (feature `mcp`).
//!
//! ```no_run
//! # async fn run(agent: aauth_agent::Agent) -> Result<(), Box<dyn std::error::Error>> {
//! use aauth_agent::mcp::McpAgent;
//! use rmcp::ServiceExt;
//!
//! let client = ().serve(McpAgent::new(agent).transport("https://tools.example/mcp")).await?;
//! let tools = client.list_all_tools().await?;
//! # let _ = tools; Ok(()) }
//! ```
//!
//! Each JSON-RPC message is POSTed signed (E§10); when the MCP server's
//! gate answers with an `Agent-Auth` challenge (a tool that needs an
//! identity or an auth token, E§4), the agent climbs — identifies itself,
//! obtains the auth token, with the user's consent when the auth server
//! asks for it — and sends the message again, so the MCP client sees only
//! the tool's answer.
//!
//! When the agent cannot reach the level a request needs (the user denied
//! access, the agent has no identity, the auth server refused), the request
//! is answered, here, with a JSON-RPC error [`LEVEL_NOT_REACHED`] whose
//! `data` says what was needed and why it was not had: an error the MCP
//! client can act on, on a session that stays usable, never a transport
//! failure. Transport failures (no connection, a timeout) stay transport
//! errors.
//!
//! **Consent through the MCP host.** When the client can show a URL
//! elicitation (its `initialize` capabilities, or a `tools/call`'s `_meta`
//! client capabilities in MCP 2026-07-28), and the climb needs the user's consent, the consent
//! page is not shown by the agent's own [`crate::ConsentHandler`]: the call
//! is answered at once, here, with an `input_required` result holding a URL
//! elicitation of the consent address (MCP's multi round-trip requests),
//! which the host shows the way it shows any elicitation. The climb goes on
//! meanwhile, waiting for the auth server's redirect; when the client sends
//! the call again with the user's answer, an `accept` gets the tool's
//! answer once consent is given, and a `decline` or `cancel` stops the
//! climb and answers [`LEVEL_NOT_REACHED`]. A client that cannot show URL
//! elicitations gets the agent's own handler (a printed address, a
//! browser).
//!
//! Absent: the long-lived `GET` stream of server-initiated messages (the
//! agent reads each answer whole, so a server's messages arrive only in the
//! answer to a request); an MCP bearer token (`auth_header`), which AAuth
//! replaces, is refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aauth_http::client::{Outgoing, Reply};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use rmcp::ErrorData;
use rmcp::model::{
    ClientJsonRpcMessage, ErrorCode, JsonRpcMessage, RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    HttpStatusError, SseError, StreamableHttpClient, StreamableHttpClientTransportConfig,
    StreamableHttpError, StreamableHttpPostResponse,
};
use serde_json::json;
use sse_stream::{Sse, SseStream};
use url::Url;

use crate::consent::PresentFuture;
use crate::{Agent, AgentError, ConsentHandler};

/// The JSON-RPC error code of a request whose tool needs a level this
/// agent could not reach (in the range JSON-RPC leaves to servers; the
/// answer is made by this transport, on the client's side).
pub const LEVEL_NOT_REACHED: i32 = -32_001;

/// `Mcp-Session-Id` (streamable HTTP before MCP 2026-07-28).
const SESSION_ID: &str = "mcp-session-id";
const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

/// The key of the consent address among an `input_required` result's
/// input requests.
pub const CONSENT_INPUT: &str = "aauth-consent";
/// How the request state of a call waiting for consent begins.
const STATE_PREFIX: &str = "aauth-consent:";
/// How long a climb waits for its call to come back with the user's answer.
const PENDING_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Most calls waiting for the user's answer at once.
const MAX_PENDING: usize = 256;

type Climb = tokio::task::JoinHandle<Result<Reply, AgentError>>;

/// A climb waiting for its call to come back (see the module's
/// documentation).
#[derive(Debug)]
struct Pending {
    since: Instant,
    climb: Climb,
}

/// rmcp's streamable HTTP client whose requests an [`Agent`] sends.
#[derive(Debug, Clone)]
pub struct McpAgent {
    agent: Agent,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    /// Whether the client's `initialize` said it can show URL elicitations.
    host_elicits: Arc<AtomicBool>,
}

/// The consent address of one call, handed to the call itself (to go to
/// the host as an elicitation); any later one goes to the agent's own
/// handler.
struct Elicit {
    address: Mutex<Option<tokio::sync::oneshot::Sender<Url>>>,
    fallback: Arc<dyn ConsentHandler>,
}

impl ConsentHandler for Elicit {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        let first = self.address.lock().ok().and_then(|mut slot| slot.take());
        match first.map(|sender| sender.send(url.clone())) {
            Some(Ok(())) => Box::pin(async { Ok(()) }),
            _ => self.fallback.present(url),
        }
    }
}

/// What the gate reads of a `tools/call` for the consent round trip.
#[derive(Debug, PartialEq)]
enum Call {
    /// Any other message, or a call whose client cannot show URL
    /// elicitations.
    Plain,
    /// A call whose client can show a URL elicitation.
    Elicitable,
    /// A call coming back with the user's answer for the pending climb
    /// `state`: the `action` of its elicitation result.
    Answered {
        state: String,
        action: Option<String>,
    },
}

/// Whether `capabilities` (a client's, as JSON) include URL elicitation.
fn elicits(capabilities: &serde_json::Value) -> bool {
    capabilities
        .pointer("/elicitation/url")
        .is_some_and(serde_json::Value::is_object)
}

/// What `message` is for the consent round trip. An `initialize` tells,
/// once for the connection, whether the client can show URL elicitations
/// (`host_elicits`); MCP 2026-07-28 says it again in each request's `_meta`.
fn call_of(message: &ClientJsonRpcMessage, host_elicits: &AtomicBool) -> Call {
    let Ok(value) = serde_json::to_value(message) else {
        return Call::Plain;
    };
    let text = |pointer: &str| value.pointer(pointer).and_then(serde_json::Value::as_str);
    let method = text("/method");
    if method == Some("initialize") {
        let said = value.pointer("/params/capabilities").is_some_and(elicits);
        host_elicits.store(said, Ordering::Relaxed);
    }
    if method != Some("tools/call") {
        return Call::Plain;
    }
    if let Some(state) = text("/params/requestState").and_then(|s| s.strip_prefix(STATE_PREFIX)) {
        return Call::Answered {
            state: state.to_owned(),
            action: text(&format!("/params/inputResponses/{CONSENT_INPUT}/action"))
                .map(str::to_owned),
        };
    }
    // "/" in the member name is "~1" in a JSON pointer (RFC 6901).
    let elicitable =
        match value.pointer("/params/_meta/io.modelcontextprotocol~1clientCapabilities") {
            Some(capabilities) => elicits(capabilities),
            None => host_elicits.load(Ordering::Relaxed),
        };
    if elicitable {
        Call::Elicitable
    } else {
        Call::Plain
    }
}

/// The `input_required` answer to call `id`: show `address` to the user,
/// then send the call again with `state`.
fn consent_needed(
    id: RequestId,
    address: &Url,
    state: &str,
) -> Result<ServerJsonRpcMessage, serde_json::Error> {
    serde_json::from_value(json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "resultType": "input_required",
            "inputRequests": {
                CONSENT_INPUT: {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "url",
                        "message": format!(
                            "This tool needs your consent at {}",
                            address.origin().ascii_serialization()
                        ),
                        "url": address.as_str(),
                    },
                },
            },
            "requestState": format!("{STATE_PREFIX}{state}"),
        },
    }))
}

/// `message` as the answer to call `id` (a call sent again answers under
/// its own id).
fn with_id(message: ServerJsonRpcMessage, id: &RequestId) -> ServerJsonRpcMessage {
    match message {
        JsonRpcMessage::Response(mut response) => {
            response.id = id.clone();
            JsonRpcMessage::Response(response)
        }
        JsonRpcMessage::Error(mut error) => {
            error.id = Some(id.clone());
            JsonRpcMessage::Error(error)
        }
        other => other,
    }
}

/// Every response in an event stream as the answer to call `id`.
fn events_with_id(
    events: BoxStream<'static, Result<Sse, SseError>>,
    id: RequestId,
) -> BoxStream<'static, Result<Sse, SseError>> {
    events
        .map(move |event| {
            event.map(|mut event| {
                if let Some(message) = event
                    .data
                    .as_deref()
                    .and_then(|data| serde_json::from_str::<ServerJsonRpcMessage>(data).ok())
                    && let Ok(data) = serde_json::to_string(&with_id(message, &id))
                {
                    event.data = Some(data);
                }
                event
            })
        })
        .boxed()
}

type Failure = StreamableHttpError<AgentError>;

impl McpAgent {
    /// MCP over `agent`.
    pub fn new(agent: Agent) -> Self {
        Self {
            agent,
            pending: Arc::default(),
            host_elicits: Arc::default(),
        }
    }

    /// The answer to call `id` once its climb has ended.
    fn finish(
        joined: Result<Result<Reply, AgentError>, tokio::task::JoinError>,
        id: RequestId,
        session_was_attached: bool,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        match joined? {
            Ok(reply) => answer(reply, Some(id), session_was_attached),
            Err(error) if is_refusal(&error) => {
                let data = json!({ "agent_error": error.to_string() });
                Ok(StreamableHttpPostResponse::Json(
                    not_reached(id, format!("the agent could not go on: {error}"), data),
                    None,
                ))
            }
            Err(error) => Err(StreamableHttpError::Client(error)),
        }
    }

    /// Sends call `id`; if its climb needs the user's consent, answers at
    /// once with the consent address as a URL elicitation and keeps the
    /// climb for the call's return.
    async fn send_elicitable(
        &self,
        request: Outgoing,
        id: RequestId,
        session_was_attached: bool,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let (sender, address) = tokio::sync::oneshot::channel();
        let agent = self.agent.clone().with_consent(Arc::new(Elicit {
            address: Mutex::new(Some(sender)),
            fallback: self.agent.consent_handler().clone(),
        }));
        let mut climb: Climb = tokio::spawn(async move { agent.send(request).await });
        tokio::select! {
            joined = &mut climb => Self::finish(joined, id, session_was_attached),
            Ok(address) = address => {
                let state = crate::random_state().map_err(StreamableHttpError::Client)?;
                let message = consent_needed(id.clone(), &address, &state)?;
                if !self.keep(state, climb) {
                    return Ok(StreamableHttpPostResponse::Json(
                        not_reached(
                            id,
                            format!("{MAX_PENDING} calls are already waiting for the user's consent"),
                            json!({}),
                        ),
                        None,
                    ));
                }
                Ok(StreamableHttpPostResponse::Json(message, None))
            }
        }
    }

    /// Keeps `climb` for its call's return under `state`; `false` (and the
    /// climb stopped) when too many calls are waiting already.
    fn keep(&self, state: String, climb: Climb) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            climb.abort();
            return false;
        };
        pending.retain(|_, waiting| {
            let live = waiting.since.elapsed() < PENDING_LIFETIME;
            if !live {
                waiting.climb.abort();
            }
            live
        });
        if pending.len() >= MAX_PENDING {
            climb.abort();
            return false;
        }
        pending.insert(
            state,
            Pending {
                since: Instant::now(),
                climb,
            },
        );
        true
    }

    /// Call `id` back with the user's answer to the consent elicitation.
    async fn resume(
        &self,
        state: &str,
        action: Option<&str>,
        id: RequestId,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let waiting = self
            .pending
            .lock()
            .ok()
            .and_then(|mut pending| pending.remove(state));
        let Some(waiting) = waiting else {
            return Ok(StreamableHttpPostResponse::Json(
                not_reached(
                    id,
                    "the consent this call waited for is no longer pending".to_owned(),
                    json!({ "elicitation": action }),
                ),
                None,
            ));
        };
        if action != Some("accept") {
            waiting.climb.abort();
            return Ok(StreamableHttpPostResponse::Json(
                not_reached(
                    id,
                    format!(
                        "the user did not open the consent page ({})",
                        action.unwrap_or("no answer")
                    ),
                    json!({ "elicitation": action }),
                ),
                None,
            ));
        }
        Ok(
            match Self::finish(waiting.climb.await, id.clone(), false)? {
                StreamableHttpPostResponse::Json(message, session) => {
                    StreamableHttpPostResponse::Json(with_id(message, &id), session)
                }
                StreamableHttpPostResponse::Sse(events, session) => {
                    StreamableHttpPostResponse::Sse(events_with_id(events, id), session)
                }
                accepted => accepted,
            },
        )
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The rmcp transport to the MCP endpoint `url`.
    pub fn transport(self, url: &str) -> StreamableHttpClientTransport<Self> {
        StreamableHttpClientTransport::with_client(
            self,
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
        )
    }

    fn outgoing(
        method: Method,
        uri: &str,
        session_id: Option<&str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Outgoing, Failure> {
        if auth_header.is_some() {
            return Err(StreamableHttpError::Client(AgentError::Protocol(
                "an MCP bearer token is not sent: AAuth signs each request instead".into(),
            )));
        }
        let url = Url::parse(uri)
            .map_err(|e| StreamableHttpError::Client(AgentError::Url(format!("{uri}: {e}"))))?;
        let mut request = Outgoing::new(method, url);
        request.headers.push((
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        ));
        if let Some(session_id) = session_id {
            let value = HeaderValue::from_str(session_id).map_err(|_| {
                StreamableHttpError::UnexpectedServerResponse(Cow::from(
                    "the session id is not a header value",
                ))
            })?;
            request
                .headers
                .push((HeaderName::from_static(SESSION_ID), value));
        }
        request.headers.extend(custom_headers);
        Ok(request)
    }
}

/// The JSON-RPC error answering request `id` that could not reach the
/// level it needs, with `data` saying why.
fn not_reached(id: RequestId, message: String, data: serde_json::Value) -> ServerJsonRpcMessage {
    JsonRpcMessage::error(
        ErrorData::new(ErrorCode(LEVEL_NOT_REACHED), message, Some(data)),
        Some(id),
    )
}

/// Whether an agent error is the agent failing to reach a level (answered
/// as [`LEVEL_NOT_REACHED`]) rather than a transport failure.
fn is_refusal(error: &AgentError) -> bool {
    !matches!(error, AgentError::Client(_) | AgentError::Url(_))
}

fn media_type(reply: &Reply) -> Option<String> {
    let value = reply.headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or(value).trim();
    Some(essence.to_ascii_lowercase())
}

fn session_of(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get(SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The messages of a whole `text/event-stream` answer.
fn events(body: Bytes) -> BoxStream<'static, Result<Sse, SseError>> {
    SseStream::from_bytes_stream(futures::stream::iter([Ok::<_, std::io::Error>(body)])).boxed()
}

/// The answer to a POSTed message, read the way streamable HTTP says.
fn answer(
    reply: Reply,
    id: Option<RequestId>,
    session_was_attached: bool,
) -> Result<StreamableHttpPostResponse, Failure> {
    let status = reply.status;
    if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
        return Ok(StreamableHttpPostResponse::Accepted);
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // The climb ended here: the agent had nothing higher to offer.
        let error = reply.error.as_ref();
        let message = format!(
            "the MCP server answered {status}{}",
            error.map(|e| format!(": {e}")).unwrap_or_default()
        );
        let Some(id) = id else {
            return Err(StreamableHttpError::UnexpectedServerResponse(Cow::from(
                message,
            )));
        };
        let data = json!({
            "status": status.as_u16(),
            "error": error.map(|e| e.error.clone()),
            "error_description": error.and_then(|e| e.error_description.clone()),
            "agent_auth": reply.agent_auth().map(|c| c.to_header_value()),
        });
        return Ok(StreamableHttpPostResponse::Json(
            not_reached(id, message, data),
            None,
        ));
    }
    if status == StatusCode::NOT_FOUND && session_was_attached {
        return Err(StreamableHttpError::SessionExpired);
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = reply
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return Err(HttpStatusError::new(status.as_u16(), retry_after).into());
    }
    if !status.is_success() {
        // A JSON-RPC error in a 4xx body is the server's answer.
        if let Ok(message @ JsonRpcMessage::Error(_)) =
            serde_json::from_slice::<ServerJsonRpcMessage>(&reply.body)
        {
            return Ok(StreamableHttpPostResponse::Json(
                message,
                session_of(&reply),
            ));
        }
        return Err(StreamableHttpError::UnexpectedServerResponse(Cow::from(
            format!(
                "{status}: {}",
                reply.text().chars().take(256).collect::<String>()
            ),
        )));
    }
    let session = session_of(&reply);
    match media_type(&reply).as_deref() {
        Some(JSON) => Ok(StreamableHttpPostResponse::Json(
            serde_json::from_slice(&reply.body)?,
            session,
        )),
        Some(EVENT_STREAM) => Ok(StreamableHttpPostResponse::Sse(events(reply.body), session)),
        other => Err(StreamableHttpError::UnexpectedContentType(
            other.map(str::to_owned),
        )),
    }
}

impl StreamableHttpClient for McpAgent {
    type Error = AgentError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let id = match &message {
            JsonRpcMessage::Request(request) => Some(request.id.clone()),
            _ => None,
        };
        let call = call_of(&message, &self.host_elicits);
        if let (Some(id), Call::Answered { state, action }) = (&id, &call) {
            return self.resume(state, action.as_deref(), id.clone()).await;
        }
        let body = serde_json::to_vec(&message)?;
        let request = Self::outgoing(
            Method::POST,
            &uri,
            session_id.as_deref(),
            auth_header,
            custom_headers,
        )?
        .body(body, JSON);
        let attached = session_id.is_some();
        match id {
            Some(id) if call == Call::Elicitable => {
                self.send_elicitable(request, id, attached).await
            }
            Some(id) => Self::finish(Ok(self.agent.send(request).await), id, attached),
            None => match self.agent.send(request).await {
                Ok(reply) => answer(reply, None, attached),
                Err(error) => Err(StreamableHttpError::Client(error)),
            },
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let request = Self::outgoing(
            Method::DELETE,
            &uri,
            Some(&session_id),
            auth_header,
            custom_headers,
        )?;
        let reply = self
            .agent
            .send(request)
            .await
            .map_err(StreamableHttpError::Client)?;
        if reply.status.is_success() || reply.status == StatusCode::METHOD_NOT_ALLOWED {
            Ok(())
        } else {
            Err(StreamableHttpError::UnexpectedServerResponse(Cow::from(
                format!("deleting the session: {}", reply.status),
            )))
        }
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        // The agent reads answers whole; a stream that stays open is not
        // one it can read (see the module's documentation).
        Err(StreamableHttpError::ServerDoesNotSupportSse)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]

    use aauth_http::client::reply;
    use http::HeaderMap;

    use super::*;

    fn answered(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: &'static str,
        id: Option<i64>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        answer(
            reply(
                StatusCode::from_u16(status).unwrap(),
                map,
                Bytes::from_static(body.as_bytes()),
            ),
            id.map(RequestId::Number),
            false,
        )
    }

    #[test]
    fn a_refusal_the_agent_could_not_climb_past_is_a_json_rpc_error_for_that_request() {
        let refused = answered(
            403,
            &[
                ("content-type", "application/json"),
                ("agent-auth", "httpsig; auth-token"),
            ],
            r#"{"error":"insufficient_scope","error_description":"needs notes.write"}"#,
            Some(7),
        )
        .unwrap();
        let StreamableHttpPostResponse::Json(JsonRpcMessage::Error(error), None) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(error.id, Some(RequestId::Number(7)));
        assert_eq!(error.error.code.0, LEVEL_NOT_REACHED);
        let data = error.error.data.unwrap();
        assert_eq!(data["status"], 403);
        assert_eq!(data["error"], "insufficient_scope");
        assert_eq!(data["error_description"], "needs notes.write");
        assert_eq!(data["agent_auth"], "httpsig;auth-token");
        // A notification has no request to answer: that is an error.
        assert!(answered(401, &[], "", None).is_err());
    }

    #[test]
    fn answers_are_read_as_streamable_http_says() {
        assert!(matches!(
            answered(202, &[], "", None),
            Ok(StreamableHttpPostResponse::Accepted)
        ));
        let json = answered(
            200,
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            Some(1),
        );
        assert!(
            matches!(
                json,
                Ok(StreamableHttpPostResponse::Json(
                    JsonRpcMessage::Response(_),
                    _
                ))
            ),
            "{json:?}"
        );
        let wrong = answered(200, &[("content-type", "text/html")], "<p>", Some(1));
        assert!(
            matches!(wrong, Err(StreamableHttpError::UnexpectedContentType(Some(ref t))) if t == "text/html"),
            "{wrong:?}"
        );
        let busy = answered(503, &[("retry-after", "3")], "", Some(1));
        assert!(
            matches!(busy, Err(StreamableHttpError::HttpStatus(_))),
            "{busy:?}"
        );
        let gone = answer(
            reply(StatusCode::NOT_FOUND, HeaderMap::new(), Bytes::new()),
            Some(RequestId::Number(1)),
            true,
        );
        assert!(
            matches!(gone, Err(StreamableHttpError::SessionExpired)),
            "{gone:?}"
        );
    }

    fn message(value: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_call_is_elicitable_when_the_client_can_show_url_elicitations() {
        let host = AtomicBool::new(false);
        let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t"}});
        assert_eq!(call_of(&message(call.clone()), &host), Call::Plain);
        // Said once, in initialize ...
        let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","clientInfo":{"name":"c","version":"1"},
            "capabilities":{"elicitation":{"url":{}}}}});
        assert_eq!(call_of(&message(init), &host), Call::Plain);
        assert_eq!(call_of(&message(call), &host), Call::Elicitable);
        // ... or in each request's _meta, which then prevails.
        let form_only = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t",
            "_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}}}}});
        assert_eq!(call_of(&message(form_only), &host), Call::Plain);
        // A call sent again with the user's answer.
        let back = json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"t",
            "requestState":"aauth-consent:abc",
            "inputResponses":{"aauth-consent":{"action":"decline"}}}});
        assert_eq!(
            call_of(&message(back), &host),
            Call::Answered {
                state: "abc".to_owned(),
                action: Some("decline".to_owned())
            }
        );
    }

    #[test]
    fn the_consent_address_goes_to_the_client_as_a_url_elicitation() {
        let address = Url::parse("http://127.0.0.1:9/agent/auth?request_token=r").unwrap();
        let answer = consent_needed(RequestId::Number(5), &address, "abc").unwrap();
        let wire = serde_json::to_value(&answer).unwrap();
        assert_eq!(wire["id"], 5);
        assert_eq!(wire["result"]["resultType"], "input_required");
        assert_eq!(wire["result"]["requestState"], "aauth-consent:abc");
        let request = &wire["result"]["inputRequests"][CONSENT_INPUT];
        assert_eq!(request["method"], "elicitation/create");
        assert_eq!(request["params"]["mode"], "url");
        assert_eq!(request["params"]["url"], address.as_str());
    }

    fn mcp_agent() -> McpAgent {
        McpAgent::new(
            Agent::new(
                aauth_http::client::SigningClient::new().unwrap(),
                crate::Principal::Pseudonymous(Arc::new(
                    aauth_protocol::keys::SigningKey::generate(
                        aauth_protocol::keys::Algorithm::Ed25519,
                    )
                    .unwrap(),
                )),
                crate::TokenStore::memory(),
                Arc::new(crate::NoUser),
                aauth_protocol::ids::OriginMode::Dev,
            )
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_declined_elicitation_stops_the_climb_and_answers_level_not_reached() {
        let mcp = mcp_agent();
        let climb: Climb = tokio::spawn(std::future::pending());
        let watch = climb.abort_handle();
        assert!(mcp.keep("abc".to_owned(), climb));
        let answered = mcp
            .resume("abc", Some("decline"), RequestId::Number(9))
            .await
            .unwrap();
        let StreamableHttpPostResponse::Json(JsonRpcMessage::Error(error), _) = answered else {
            panic!("{answered:?}");
        };
        assert_eq!(error.id, Some(RequestId::Number(9)));
        assert_eq!(error.error.code.0, LEVEL_NOT_REACHED);
        assert!(
            error.error.message.contains("decline"),
            "{}",
            error.error.message
        );
        tokio::task::yield_now().await;
        assert!(watch.is_finished(), "the climb is stopped");
        // Its state is gone: the same answer again finds nothing pending.
        let again = mcp
            .resume("abc", Some("accept"), RequestId::Number(10))
            .await
            .unwrap();
        let StreamableHttpPostResponse::Json(JsonRpcMessage::Error(error), _) = again else {
            panic!("{again:?}");
        };
        assert!(
            error.error.message.contains("no longer pending"),
            "{}",
            error.error.message
        );
    }

    #[tokio::test]
    async fn at_most_max_pending_calls_wait_for_consent() {
        let mcp = mcp_agent();
        for i in 0..MAX_PENDING {
            assert!(mcp.keep(i.to_string(), tokio::spawn(std::future::pending())));
        }
        let one_more: Climb = tokio::spawn(std::future::pending());
        let watch = one_more.abort_handle();
        assert!(!mcp.keep("one more".to_owned(), one_more));
        for _ in 0..100 {
            if watch.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(watch.is_finished(), "the climb that cannot wait is stopped");
    }

    #[tokio::test]
    async fn an_event_stream_answer_is_read_whole_into_its_events() {
        let sse = answered(
            200,
            &[("content-type", "text/event-stream")],
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
            Some(1),
        )
        .unwrap();
        let StreamableHttpPostResponse::Sse(mut events, _) = sse else {
            panic!("{sse:?}");
        };
        let event = events.next().await.unwrap().unwrap();
        assert_eq!(
            event.data.as_deref(),
            Some(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
        );
        assert!(events.next().await.is_none());
    }
}
