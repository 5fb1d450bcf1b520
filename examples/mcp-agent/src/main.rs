//! An MCP client that calls tools protected by AAuth: rmcp's streamable
//! HTTP client, with every request signed and climbed by the aauth-agent
//! library, as an enrolled delegate.
//!
//! ```sh
//! aauth-agent-server enroll --dev --agent http://127.0.0.1:4001 --code "$code"
//! mcp-agent --dev http://127.0.0.1:4005/mcp                 # list the tools
//! mcp-agent --dev http://127.0.0.1:4005/mcp read_notes
//! mcp-agent --dev http://127.0.0.1:4005/mcp add_note '{"text":"hello"}'
//! ```
//!
//! A tool that needs the user's consent comes to this client as an MCP URL
//! elicitation of the consent address (the way a host shows any link a
//! tool needs opened; `--no-elicitation` leaves it to the agent, which
//! prints it); either way the address is printed and opened in a browser,
//! and the call goes on once the user has answered. A
//! tool whose level the agent cannot reach (the user said no) comes back as
//! an MCP error, printed with its code, and the program exits with 2. The
//! delegate is the one `enroll` kept in the default state directory
//! (`$XDG_DATA_HOME/aauth/delegate`), or in the one `--state-dir` names.

use std::path::Path;
use std::sync::Arc;

use aauth_agent::consent::open_in_browser;
use aauth_agent::mcp::McpAgent;
use aauth_agent::{Agent, BrowserConsent, DelegateState, Principal, TokenStore};
use aauth_http::client::SigningClient;
use aauth_http::state::{Party, state_dir};
use aauth_protocol::ids::OriginMode;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use url::Url;

/// The MCP host: it shows a URL elicitation (the consent address) by
/// printing it and opening a browser, and accepts; it asks for nothing else.
#[derive(Debug, Clone)]
struct Host {
    elicitation: bool,
}

impl ClientHandler for Host {
    fn get_info(&self) -> ClientConfig {
        let capabilities: ClientCapabilities = if self.elicitation {
            serde_json::from_value(serde_json::json!({ "elicitation": { "url": {} } }))
                .unwrap_or_default()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("mcp-agent", "0.1.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::UrlElicitationParams { message, url, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let url = Url::parse(&url)
            .map_err(|e| ErrorData::invalid_params(format!("the elicitation's url: {e}"), None))?;
        eprintln!("{message} (an MCP elicitation). Open this URL to continue:\n  {url}");
        if let Some(said) = open_in_browser(&url) {
            eprintln!("({said})");
        }
        Ok(ElicitResult::new(ElicitationAction::Accept))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dev = args.iter().any(|a| a == "--dev");
    let elicitation = !args.iter().any(|a| a == "--no-elicitation");
    args.retain(|a| a != "--dev" && a != "--no-elicitation");
    let dir = match args.iter().position(|a| a == "--state-dir") {
        Some(i) => {
            let dir = args
                .get(i + 1)
                .cloned()
                .ok_or("--state-dir needs a directory")?;
            args.drain(i..=i + 1);
            Some(dir)
        }
        None => None,
    };
    let Some(url) = args.first() else {
        return Err(
            "usage: mcp-agent [--dev] [--no-elicitation] [--state-dir DIR] URL [TOOL [JSON_ARGUMENTS]]"
                .into(),
        );
    };
    let dir = state_dir(dir.as_deref().map(Path::new), None, Party::Delegate)?;

    // The agent, as in examples/agent-call ...
    let agent = Agent::new(
        SigningClient::new()?,
        Principal::Delegate(DelegateState::load(&dir)?),
        TokenStore::in_dir(&dir)?,
        Arc::new(BrowserConsent),
        if dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        },
    )?;
    // ... and an MCP client whose requests it sends.
    let client = Host { elicitation }
        .serve(McpAgent::new(agent).transport(url))
        .await?;

    let Some(tool) = args.get(1) else {
        for tool in client.list_all_tools().await? {
            println_out(&format!(
                "{}: {}",
                tool.name,
                tool.description.as_deref().unwrap_or("")
            ));
        }
        return Ok(());
    };
    let mut call = CallToolRequestParams::new(tool.clone());
    if let Some(arguments) = args.get(2) {
        call = call.with_arguments(serde_json::from_str(arguments)?);
    }
    match client.call_tool(call).await {
        Ok(result) => {
            for content in &result.content {
                if let Some(text) = content.as_text() {
                    println_out(&text.text);
                }
            }
            if result.is_error == Some(true) {
                std::process::exit(1);
            }
            Ok(())
        }
        // The agent could not reach the tool's level: an answer to act on.
        Err(ServiceError::McpError(error)) => {
            eprintln!("MCP error {}: {}", error.code.0, error.message);
            if let Some(data) = &error.data {
                eprintln!("{data}");
            }
            std::process::exit(2);
        }
        Err(error) => Err(error.into()),
    }
}

#[expect(clippy::print_stdout, reason = "the tools' answers are the output")]
fn println_out(line: &str) {
    println!("{line}");
}
