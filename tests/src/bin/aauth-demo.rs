//! `aauth-demo`: starts the agent server, the auth server and the resource on
//! loopback, walks through every level of AAuth while printing each step,
//! then the multi-hop chain (by exchange, and with the user needed one and
//! two hops down), prints a summary, and stops every process it started.

use std::process::ExitCode;
use std::sync::Arc;

use aauth_e2e::chain::{Chain, ChainOptions};
use aauth_e2e::demo::{self, Depth};
use aauth_e2e::world::{World, WorldError};

#[expect(clippy::print_stdout, reason = "the demo's output is its purpose")]
fn say(line: &str) {
    println!("{line}");
}

/// Steps 8–10: the chain by exchange, then with the user needed one and two
/// hops down.
async fn multi_hop() -> Result<Vec<demo::Outcome>, WorldError> {
    let chain = Chain::start(&ChainOptions::default())?;
    let mut outcomes = vec![demo::run_chain(&chain, Arc::new(say)).await?];
    drop(chain);
    for (number, depth, options) in [
        (
            9,
            Depth::OneLevel,
            ChainOptions {
                consent_for_r2: true,
                ..ChainOptions::default()
            },
        ),
        (
            10,
            Depth::TwoLevels,
            ChainOptions {
                consent_for_r3: true,
                ..ChainOptions::default()
            },
        ),
    ] {
        let chain = Chain::start(&options)?;
        outcomes.push(demo::run_interaction(&chain, number, depth, Arc::new(say)).await?);
    }
    Ok(outcomes)
}

const USAGE: &str = "\
Usage: aauth-demo [--keep]

Starts an agent server, an auth server and a resource on loopback (dev mode),
walks through every level of AAuth (pseudonymous, identified, authorized, with
a user who signs in and consents), then resources calling resources: by token
exchange, and with the user needed one and two hops down. Prints each step and
a summary, and stops every process it started.

Options:
      --keep    Keep the run's directory (configurations, databases, logs)
  -h, --help    Print this help
";

#[expect(clippy::print_stdout, reason = "the demo's output is its purpose")]
#[tokio::main]
async fn main() -> ExitCode {
    let mut keep = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--keep" => keep = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprint!("aauth-demo: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // Ctrl-C or SIGTERM drops the walk, and with it every server it
    // started and its run directory (unless --keep). The handlers are in
    // place before the first server starts.
    let stop = StopSignals::install();
    tokio::select! {
        biased;
        (signal, code) = stop.wait() => {
            println!("\n{signal}: stopping every server the demo started.");
            code
        }
        code = walk(keep) => code,
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment they are installed.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for either: its name, and the exit status a shell gives a
    /// process it ended (128 + the signal's number).
    async fn wait(mut self) -> (&'static str, ExitCode) {
        #[cfg(unix)]
        {
            let interrupt = async {
                match self.interrupt.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let terminate = async {
                match self.terminate.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interrupt => ("interrupted", ExitCode::from(130)),
                _ = terminate => ("terminated", ExitCode::from(143)),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("interrupted", ExitCode::from(130))
        }
    }
}

/// The whole demo: the walk, the multi-hop steps and the summary.
#[expect(clippy::print_stdout, reason = "the demo's output is its purpose")]
async fn walk(keep: bool) -> ExitCode {
    println!(
        "AAuth three-party demo: agent server, auth server and resource on loopback (dev mode)."
    );
    let mut options = demo::options();
    options.keep = keep;
    let mut world = match World::start(&options) {
        Ok(world) => world,
        Err(error) => {
            eprintln!("could not start the servers: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("  agent server  {}", world.agent_server.url());
    println!("  auth server   {}", world.auth_server.url());
    println!("  resource      {}", world.resource.url());
    println!(
        "  run directory {} (configurations, databases, logs; removed at the end unless --keep)",
        world.dir().display()
    );
    println!("{}", demo::REFERENCES);

    let mut outcomes = demo::run(&world, Arc::new(say)).await;
    // The multi-hop scenarios run in six processes each.
    if let Ok(list) = outcomes.as_mut() {
        match multi_hop().await {
            Ok(more) => list.extend(more),
            Err(error) => outcomes = Err(error),
        }
    }
    println!();
    let code = match outcomes {
        Ok(outcomes) => {
            println!("── Summary");
            for outcome in &outcomes {
                println!(
                    "   {} {:<13} {}",
                    if outcome.ok { "✔" } else { "✘" },
                    outcome.title,
                    outcome.detail
                );
            }
            if outcomes.iter().all(|o| o.ok) {
                println!("\nEvery level worked. Stopping the servers.");
                ExitCode::SUCCESS
            } else {
                world.keep();
                println!(
                    "\nSome steps did not go as expected; the logs are in {}.",
                    world.dir().display()
                );
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            world.keep();
            println!("The walk stopped: {error}");
            println!("The servers' logs are in {}.", world.dir().display());
            ExitCode::FAILURE
        }
    };
    if !world.is_temporary() {
        println!("Kept {}.", world.dir().display());
    }
    drop(world);
    code
}
