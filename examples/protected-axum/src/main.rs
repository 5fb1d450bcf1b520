//! A small existing axum service, a greeting board, protected with AAuth.
//! Ten lines were added: the `use` line, the six after "Added for AAuth" and
//! the three marked `// AAuth`; and `Caller`, in the handlers that want to
//! know who called.
//!
//! ```sh
//! protected-axum --dev --listen 127.0.0.1:4004 --auth-server http://127.0.0.1:4002
//! ```
//!
//! `GET /` stays open; `GET /whoami` needs an identified agent (E§4.2);
//! `GET /greeting` needs an auth token with `greetings.read` (E§4.3), which
//! the agent obtains from the auth server, with the user's consent if its
//! policy asks for it. The key is made afresh at each start.

use std::net::SocketAddr;

use aauth_axum::{Caller, Guard, Need};
use aauth_http::runtime::ServerKey;
use aauth_protocol::ids::{Origin, OriginMode};
use axum::Router;
use axum::routing::get;

async fn home() -> &'static str {
    "Greetings! Sign your requests to see more.\n"
}

async fn whoami(caller: Caller) -> String {
    format!(
        "agent {}, delegate {}\n",
        caller.agent().map_or("-", |a| a.as_str()),
        caller.delegate().unwrap_or("-")
    )
}

async fn greeting(caller: Caller) -> String {
    format!("Good morning, {}!\n", caller.user().unwrap_or("agent"))
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
    let auth_server = value("--auth-server").ok_or(
        "usage: protected-axum [--dev] [--listen ADDR] [--public-url URL] --auth-server URL",
    )?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let public_url = value("--public-url")
        .unwrap_or_else(|| format!("http://{}", listener.local_addr().unwrap_or(listen)));

    let me = Origin::parse(&public_url, mode)?;

    // Added for AAuth (with the `use` line and the three lines marked
    // below): the auth server this resource trusts, the scopes it offers.
    let auth_server = Origin::parse(&auth_server, mode)?;
    let guard = Guard::builder(me.clone(), auth_server, ServerKey::generate()?)
        .dev(dev)
        .scope("greetings.read", "Read your greetings")
        .build()?;
    let may_read = guard.layer(Need::scope("greetings.read"));

    let app = Router::new()
        .route("/", get(home))
        .route("/whoami", get(whoami).layer(guard.layer(Need::Identified))) // AAuth
        .route("/greeting", get(greeting).layer(may_read)) // AAuth
        .merge(guard.routes()); // AAuth: metadata, key set, resource token endpoint

    #[expect(clippy::print_stdout, reason = "scripts wait for this line")]
    {
        println!("listening url={me}");
    }
    axum::serve(listener, app).await?;
    Ok(())
}
