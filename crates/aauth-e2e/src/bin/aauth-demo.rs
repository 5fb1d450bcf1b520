//! `aauth-demo`: starts the agent server, the auth server and the resource on
//! loopback, walks through every level of AAuth while printing each step,
//! prints a summary, and stops every process it started.

use std::process::ExitCode;
use std::sync::Arc;

use aauth_e2e::chain::{Chain, ChainOptions};
use aauth_e2e::demo;
use aauth_e2e::world::World;

#[expect(clippy::print_stdout, reason = "the demo's output is its purpose")]
fn say(line: &str) {
    println!("{line}");
}

#[expect(clippy::print_stdout, reason = "the demo's output is its purpose")]
#[tokio::main]
async fn main() -> ExitCode {
    let keep = std::env::args().any(|a| a == "--keep");
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

    let mut outcomes = demo::run(&world, Arc::new(say)).await;
    // The multi-hop scenario runs in its own six processes.
    if let Ok(list) = outcomes.as_mut() {
        match Chain::start(&ChainOptions::default()) {
            Ok(chain) => match demo::run_chain(&chain, Arc::new(say)).await {
                Ok(outcome) => list.push(outcome),
                Err(error) => outcomes = Err(error),
            },
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
