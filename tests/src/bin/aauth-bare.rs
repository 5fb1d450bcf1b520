//! `aauth-bare`: the load benchmark's baseline, an axum handler with
//! nothing of AAuth in front of it. `GET /` answers `200 ok`; nothing else
//! is served. It announces itself with one `listening url=…` line, as the
//! parties do.
//!
//! Usage: `aauth-bare --listen 127.0.0.1:PORT`.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (Some("--listen"), Some(address)) => address.parse::<SocketAddr>(),
        _ => {
            eprintln!("usage: aauth-bare --listen 127.0.0.1:PORT");
            return ExitCode::from(2);
        }
    };
    let listen = match listen {
        Ok(address) => address,
        Err(e) => {
            eprintln!("aauth-bare: --listen: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("aauth-bare: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[expect(clippy::print_stdout, reason = "the harness waits for this line")]
    {
        println!("listening url=http://{listen}");
    }
    let app = Router::new().route("/", get(|| async { "ok" }));
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aauth-bare: {e}");
            ExitCode::FAILURE
        }
    }
}
