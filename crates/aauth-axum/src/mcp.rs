//! The level each tool of an MCP server needs, on its one endpoint.
//!
//! An MCP server answers every JSON-RPC message at one URL (streamable
//! HTTP), so a route's layer cannot tell a read from a write. [`McpNeeds`]
//! reads the message before the server does and names the [`Need`] of the
//! tool it calls; [`McpNeeds::layer`] puts it in front of the endpoint:
//!
//! ```no_run
//! # fn run(guard: aauth_axum::Guard, mcp: axum::Router) {
//! use aauth_axum::Need;
//! use aauth_axum::mcp::McpNeeds;
//!
//! let needs = McpNeeds::new(Need::Signed)
//!     .tool("read_notes", Need::Identified)
//!     .tool("add_note", Need::scope("notes.write"));
//! let app = mcp.layer(needs.layer(&guard)).merge(guard.routes());
//! # let _ = app; }
//! ```
//!
//! A request whose level falls short is answered at the HTTP level, like
//! any other route's (the `Agent-Auth` challenge, E§4), so that the agent
//! climbs and sends it again; the MCP server only ever sees requests that
//! meet their tool's need.

use std::collections::HashMap;
use std::sync::Arc;

use aauth_http::server::ErrorResponse;
use aauth_protocol::error::Condition;
use serde::Deserialize;

use crate::{Guard, Need, RequireLayer};

/// The JSON-RPC method whose `params.name` names a tool.
pub const TOOLS_CALL: &str = "tools/call";

/// What the gate reads of a JSON-RPC message. Derived, so a member given
/// twice is an error rather than "the last one wins".
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    name: Option<serde_json::Value>,
}

/// The need of every MCP message: a floor for the endpoint (initialize,
/// listing, notifications, and tools not named), and one per tool.
#[derive(Debug, Clone)]
pub struct McpNeeds {
    floor: Need,
    tools: Arc<HashMap<String, Need>>,
}

impl McpNeeds {
    /// Every message needs `floor`; tools named with [`McpNeeds::tool`]
    /// need theirs instead.
    pub fn new(floor: Need) -> Self {
        Self {
            floor,
            tools: Arc::new(HashMap::new()),
        }
    }

    /// The tool `name` needs `need`.
    #[must_use]
    pub fn tool(mut self, name: &str, need: Need) -> Self {
        Arc::make_mut(&mut self.tools).insert(name.to_owned(), need);
        self
    }

    /// The need of one message body. A body that is not JSON needs the
    /// floor (the MCP server refuses it without running anything); a
    /// `tools/call` whose tool cannot be read with certainty (no name, a
    /// name that is not a string, a member given twice) is refused as
    /// malformed, so that no reading of the message can reach a tool past
    /// its need.
    pub fn need_of(&self, body: &[u8]) -> Result<Need, ErrorResponse> {
        let message: Message = match serde_json::from_slice(body) {
            Ok(message) => message,
            // Not JSON at all (or cut short): nothing can run it.
            Err(e) if e.is_syntax() || e.is_eof() => return Ok(self.floor),
            // JSON, but not one message read with certainty.
            Err(e) => {
                return Err(ErrorResponse::new(
                    Condition::MalformedRequest,
                    format!("the JSON-RPC message cannot be read: {e}"),
                ));
            }
        };
        if message.method.as_deref() != Some(TOOLS_CALL) {
            return Ok(self.floor);
        }
        match message.params.and_then(|p| p.name) {
            Some(serde_json::Value::String(name)) => {
                Ok(self.tools.get(&name).copied().unwrap_or(self.floor))
            }
            _ => Err(ErrorResponse::new(
                Condition::MalformedRequest,
                "tools/call without a tool name (params.name)",
            )),
        }
    }

    /// The layer that checks each message against its need.
    pub fn layer(self, guard: &Guard) -> RequireLayer {
        guard.layer_fn(move |_, body| self.need_of(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> McpNeeds {
        McpNeeds::new(Need::Signed)
            .tool("read", Need::Identified)
            .tool("write", Need::scope("notes.write"))
    }

    fn call(name: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
        )
    }

    #[test]
    fn each_tool_needs_its_own_level() {
        let needs = needs();
        assert_eq!(
            needs.need_of(call("read").as_bytes()).ok(),
            Some(Need::Identified)
        );
        assert_eq!(
            needs.need_of(call("write").as_bytes()).ok(),
            Some(Need::scope("notes.write"))
        );
        assert_eq!(
            needs.need_of(call("other").as_bytes()).ok(),
            Some(Need::Signed)
        );
    }

    #[test]
    fn other_messages_need_the_floor() {
        let needs = needs();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"name":"write"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
            "",
            "not json",
        ] {
            assert_eq!(
                needs.need_of(body.as_bytes()).ok(),
                Some(Need::Signed),
                "{body}"
            );
        }
    }

    #[test]
    fn a_call_whose_tool_is_uncertain_is_refused() {
        let needs = needs();
        for body in [
            // The last "name" would win in a lenient reader.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","name":"write"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"write"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            // A batch: not one message (MCP sends one per request).
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write"}}]"#,
        ] {
            let error = needs.need_of(body.as_bytes()).err();
            assert!(error.is_some(), "{body}");
        }
    }
}
