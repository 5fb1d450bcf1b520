//! Calls a resource protected by AAuth as an enrolled delegate, climbing
//! whatever levels the resource asks for: an identity, then an auth token,
//! with the user's consent in a browser when the auth server needs it.
//!
//! ```sh
//! aauth-agent-server enroll --dev --agent http://127.0.0.1:4001 --code "$code"
//! agent-call --dev http://127.0.0.1:4003/data
//! ```
//!
//! The delegate is the one `enroll` kept in the default state directory
//! (`$XDG_DATA_HOME/aauth/delegate`), or in the directory given second.

use std::sync::Arc;

use aauth_agent::{Agent, BrowserConsent, DelegateState, Principal, TokenStore};
use aauth_http::client::SigningClient;
use aauth_http::state::{Party, state_dir};
use aauth_protocol::ids::OriginMode;
use http::Method;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // --dev: loopback http identifiers, as the three-party demo uses.
    let dev = args.iter().any(|a| a == "--dev");
    args.retain(|a| a != "--dev");
    let (Some(url), dir) = (args.first(), args.get(1)) else {
        return Err("usage: agent-call [--dev] URL [STATE_DIR]".into());
    };
    let dir = state_dir(dir.map(std::path::Path::new), None, Party::Delegate)?;

    // The agent: this delegate, its stored grants, and a browser for consent.
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
    let reply = agent.call(Method::GET, url, None, None).await?;

    eprintln!("HTTP {}", reply.status);
    #[expect(clippy::print_stdout, reason = "the answer is the example's output")]
    {
        println!("{}", reply.text());
    }
    Ok(())
}
