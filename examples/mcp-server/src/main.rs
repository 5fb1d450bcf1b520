//! An MCP server (rmcp, streamable HTTP) whose tools need AAuth levels: a
//! shared notice board.
//!
//! ```sh
//! mcp-server --dev --listen 127.0.0.1:4005 --auth-server http://127.0.0.1:4002
//! ```
//!
//! - `initialize`, `tools/list`: any signed request (E§4.1);
//! - `read_notes`: an identified agent (E§4.2);
//! - `add_note`: an auth token granting `notes.write` (E§4.3), which the
//!   agent obtains from the auth server with the user's consent.
//!
//! The MCP endpoint is `/mcp`; [`McpNeeds`] reads each JSON-RPC message in
//! front of it and challenges at the HTTP level, so the MCP server only
//! sees calls that meet their tool's need, and the tools read who called
//! from the request's [`Caller`]. The key is made afresh at each start.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aauth_axum::mcp::McpNeeds;
use aauth_axum::{Caller, Guard, Need};
use aauth_http::runtime::ServerKey;
use aauth_protocol::ids::{Origin, OriginMode};
use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// The scope `add_note` needs.
const WRITE: &str = "notes.write";

/// `add_note`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct NewNote {
    /// The note, at most 500 characters.
    text: String,
}

/// One note and who left it.
#[derive(Debug, Clone)]
struct Note {
    author: String,
    text: String,
}

/// The board: its notes (kept in memory) and its tools.
#[derive(Debug, Clone)]
struct Board {
    notes: Arc<Mutex<Vec<Note>>>,
    tool_router: ToolRouter<Self>,
}

/// The verified caller of this MCP request (put there by the gate).
fn caller(parts: &Parts) -> Result<&Caller, ErrorData> {
    parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| ErrorData::internal_error("the MCP endpoint is not behind the gate", None))
}

#[tool_router]
impl Board {
    fn new(notes: Arc<Mutex<Vec<Note>>>) -> Self {
        Self {
            notes,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Read the notes on the board (needs an identified agent)")]
    fn read_notes(&self, Extension(parts): Extension<Parts>) -> Result<String, ErrorData> {
        let caller = caller(&parts)?;
        let notes = self
            .notes
            .lock()
            .map_err(|_| ErrorData::internal_error("the board is unusable", None))?;
        let mut text = format!(
            "{} note(s), read by agent {}\n",
            notes.len(),
            caller.agent().map_or("-", |a| a.as_str())
        );
        for note in notes.iter() {
            text.push_str(&format!("- {}: {}\n", note.author, note.text));
        }
        Ok(text)
    }

    #[tool(description = "Leave a note on the board (needs the user's consent: notes.write)")]
    fn add_note(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(NewNote { text }): Parameters<NewNote>,
    ) -> Result<String, ErrorData> {
        let caller = caller(&parts)?;
        if text.chars().count() > 500 {
            return Err(ErrorData::invalid_params(
                "a note is at most 500 characters",
                None,
            ));
        }
        // The user, when the auth token names one (it does with `openid`,
        // E§7.4); otherwise the delegate that consented on the user's behalf.
        let author = caller
            .user()
            .or(caller.delegate())
            .unwrap_or("an agent")
            .to_owned();
        let mut notes = self
            .notes
            .lock()
            .map_err(|_| ErrorData::internal_error("the board is unusable", None))?;
        notes.push(Note { author, text });
        Ok(format!("note {} added", notes.len()))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Board {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("A notice board: read_notes, add_note")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let dev = args.iter().any(|a| a == "--dev");
    let mode = if dev {
        OriginMode::Dev
    } else {
        OriginMode::Production
    };
    let listen: SocketAddr = value("--listen")
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()?;
    let auth_server = value("--auth-server")
        .ok_or("usage: mcp-server [--dev] [--listen ADDR] [--public-url URL] --auth-server URL")?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let public_url = value("--public-url")
        .unwrap_or_else(|| format!("http://{}", listener.local_addr().unwrap_or(listen)));
    let me = Origin::parse(&public_url, mode)?;

    let guard = Guard::builder(
        me.clone(),
        Origin::parse(&auth_server, mode)?,
        ServerKey::generate()?,
    )
    .dev(dev)
    .name("Notice board (MCP)")
    .scope(WRITE, "Leave notes on the board")
    .build()?;
    let needs = McpNeeds::new(Need::Signed)
        .tool("read_notes", Need::Identified)
        .tool("add_note", Need::scope(WRITE));

    // Stateless streamable HTTP answering JSON: each POST stands alone, as
    // each AAuth signature does. rmcp checks the Host against the public
    // URL's authority.
    let notes = Arc::new(Mutex::new(Vec::new()));
    let authority = url::Url::parse(me.as_str())?;
    let host = authority.host_str().unwrap_or_default().to_owned();
    let host_port = authority
        .port()
        .map_or_else(|| host.clone(), |port| format!("{host}:{port}"));
    let mcp = StreamableHttpService::new(
        move || Ok(Board::new(notes.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_allowed_hosts([host, host_port]),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(needs.layer(&guard))
        .merge(guard.routes());

    #[expect(clippy::print_stdout, reason = "scripts wait for this line")]
    {
        println!("listening url={me}/mcp");
    }
    axum::serve(listener, app).await?;
    Ok(())
}
