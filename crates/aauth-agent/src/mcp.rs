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
//! Absent: the long-lived `GET` stream of server-initiated messages (the
//! agent reads each answer whole, so a server's messages arrive only in the
//! answer to a request); an MCP bearer token (`auth_header`), which AAuth
//! replaces, is refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

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

use crate::{Agent, AgentError};

/// The JSON-RPC error code of a request whose tool needs a level this
/// agent could not reach (in the range JSON-RPC leaves to servers; the
/// answer is made by this transport, on the client's side).
pub const LEVEL_NOT_REACHED: i32 = -32_001;

/// `Mcp-Session-Id` (streamable HTTP before MCP 2026-07-28).
const SESSION_ID: &str = "mcp-session-id";
const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

/// rmcp's streamable HTTP client whose requests an [`Agent`] sends.
#[derive(Debug, Clone)]
pub struct McpAgent {
    agent: Agent,
}

type Failure = StreamableHttpError<AgentError>;

impl McpAgent {
    /// MCP over `agent`.
    pub fn new(agent: Agent) -> Self {
        Self { agent }
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
        let body = serde_json::to_vec(&message)?;
        let request = Self::outgoing(
            Method::POST,
            &uri,
            session_id.as_deref(),
            auth_header,
            custom_headers,
        )?
        .body(body, JSON);
        match self.agent.send(request).await {
            Ok(reply) => answer(reply, id, session_id.is_some()),
            Err(error) => match id {
                Some(id) if is_refusal(&error) => {
                    let data = json!({ "agent_error": error.to_string() });
                    Ok(StreamableHttpPostResponse::Json(
                        not_reached(id, format!("the agent could not go on: {error}"), data),
                        None,
                    ))
                }
                _ => Err(StreamableHttpError::Client(error)),
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
