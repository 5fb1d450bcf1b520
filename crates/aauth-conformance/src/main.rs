//! `aauth-conformance`: checks another AAuth implementation black-box.
//! See the crate documentation and `docs/interop.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aauth_conformance::profile::{
    self, AgentServerTarget, AgentTarget, AuthServerTarget, ResourceTarget,
};
use aauth_conformance::report::{Outcome, Verdict};
use aauth_conformance::run::Settings;
use aauth_conformance::{Options, Role, check};
use aauth_http::client::Compat;
use clap::{Parser, Subcommand};
use url::Url;

#[derive(Parser)]
#[command(
    name = "aauth-conformance",
    version,
    about = "Checks an AAuth resource, auth server or agent server black-box",
    after_help = "Exit status: 0 when no check failed, 1 when one did, 2 when the run could not be made."
)]
struct Cli {
    #[command(subcommand)]
    role: Command,
    /// The protocol profile whose checks run (see `profiles`).
    #[arg(long, global = true, default_value = "aauth-2026-01")]
    profile: String,
    /// Also write the report as JSON to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Seconds one request may take.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    /// Seconds the whole run may take; checks after it are skipped.
    #[arg(long, global = true, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    deadline: u64,
    /// Where the suite's own agent server listens.
    #[arg(long, global = true, default_value = "127.0.0.1:0")]
    listen: String,
    /// The suite's public URL, when a tunnel or proxy forwards it to --listen.
    #[arg(long, global = true)]
    public_url: Option<Url>,
    /// Another origin the suite may contact (repeatable).
    #[arg(long, global = true, value_name = "URL")]
    allow_origin: Vec<Url>,
    /// A user to sign in as on the target's consent pages.
    #[arg(long, global = true, requires = "password")]
    user: Option<String>,
    /// Their password.
    #[arg(
        long,
        global = true,
        env = "AAUTH_CONFORMANCE_PASSWORD",
        requires = "user"
    )]
    password: Option<String>,
    /// Seconds to wait for a person to consent when no --user is given.
    #[arg(long, global = true, default_value_t = 300)]
    consent_wait: u64,
    /// Write the well-formed requests the way a peer reads them (label,
    /// `Signature-Key` syntax, `Signature` encoding), so that its hostile
    /// cases are judged on what they change; `strict` is this profile.
    #[arg(long, global = true, value_enum, default_value = "strict")]
    compat: Compat,
    /// Print only the table, not each check as it finishes.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check a resource.
    Resource {
        /// The resource's origin.
        url: Url,
        /// A GET path that needs the identified level.
        #[arg(long, default_value = "/whoami")]
        identified_path: String,
        /// A GET path that needs an auth token with --scope.
        #[arg(long, default_value = "/data")]
        authorized_path: String,
        /// The scope the authorized path needs.
        #[arg(long, default_value = "data.read")]
        scope: String,
        /// "METHOD PATH" of a request that needs a scope beyond --scope
        /// (sent with a small JSON body); "" for none.
        #[arg(long, default_value = "POST /data")]
        beyond_scope: String,
        /// Send up to N unsigned GETs to --public-path to meet its rate
        /// limit (429 rate_limited). Off by default: it floods the tier.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rate_probe: Option<u32>,
        /// A path open to unsigned requests, for --rate-probe.
        #[arg(long, default_value = "/public")]
        public_path: String,
    },
    /// Check an auth server.
    AuthServer {
        /// The auth server's origin.
        url: Url,
        /// A scope its policy grants with a user's consent.
        #[arg(long, default_value = "data.read")]
        scope: String,
    },
    /// Check an agent server's metadata, enrollment and renewal.
    AgentServer {
        /// The agent server's origin.
        url: Url,
        /// A one-time enrollment code from its operator (used up by the run).
        #[arg(long)]
        code: String,
        /// The enrollment endpoint.
        #[arg(long, default_value = "/delegate/enroll")]
        enroll_path: String,
        /// The renewal endpoint.
        #[arg(long, default_value = "/delegate/renew")]
        renew_path: String,
    },
    /// Check an agent: the suite serves a resource on --listen, prints
    /// its URL and the requests to make, and grades what the agent sends.
    Agent {
        /// The auth server the suite's resource names for the authorized
        /// level (without it, that level is not checked).
        #[arg(long)]
        auth_server: Option<Url>,
        /// Seconds to wait for the agent to finish the scenario.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        wait: u64,
    },
    /// List the protocol profiles.
    Profiles,
}

/// The agent role's `listening url=…` line goes to standard output (for
/// scripts); the instructions after it to standard error.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn announce(text: &str) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    println!("{first}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    eprintln!("{rest}");
}

#[allow(clippy::print_stderr)]
fn progress(outcome: &Outcome) {
    eprintln!(
        "{:<4} {} ({})",
        outcome.verdict.as_str(),
        outcome.id,
        outcome.rule
    );
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = cli.listen.clone();
    let role = match cli.role {
        Command::Profiles => {
            for p in profile::all() {
                println!("{:<16} {}", p.name(), p.about());
            }
            return ExitCode::SUCCESS;
        }
        Command::Resource {
            url,
            identified_path,
            authorized_path,
            scope,
            beyond_scope,
            rate_probe,
            public_path,
        } => Role::Resource(ResourceTarget {
            url,
            identified_path,
            authorized_path,
            scope,
            beyond_scope: beyond_scope
                .split_once(' ')
                .map(|(m, p)| (m.trim().to_owned(), p.trim().to_owned())),
            rate_probe: rate_probe.map(|n| (public_path, n)),
        }),
        Command::AuthServer { url, scope } => Role::AuthServer(AuthServerTarget { url, scope }),
        Command::Agent { auth_server, wait } => Role::Agent(AgentTarget {
            listen: listen.clone(),
            auth_server,
            wait: Duration::from_secs(wait),
            announce,
        }),
        Command::AgentServer {
            url,
            code,
            enroll_path,
            renew_path,
        } => Role::AgentServer(AgentServerTarget {
            url,
            code,
            enroll_path,
            renew_path,
        }),
    };
    let Some(profile) = profile::find(&cli.profile) else {
        eprintln!(
            "error: no profile {:?}; `aauth-conformance profiles` lists them",
            cli.profile
        );
        return ExitCode::from(2);
    };
    let options = Options {
        listen: cli.listen,
        public_url: cli.public_url,
        allow: cli.allow_origin,
        timeout: Duration::from_secs(cli.timeout),
        settings: Settings {
            user: cli.user,
            password: cli.password,
            consent_wait: Duration::from_secs(cli.consent_wait),
            deadline: Duration::from_secs(cli.deadline),
            style: cli.compat.style(),
        },
        progress: (!cli.quiet).then_some(progress as fn(&Outcome)),
    };
    let report = match check(profile.as_ref(), &role, &options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // A reader that went away (`| head`) is not an error of the run.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(report.table().as_bytes());
        let _ = out.flush();
    }
    let mut failed_to_write = false;
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            failed_to_write = true;
        }
    }
    if let Some(path) = &cli.junit
        && let Err(e) = std::fs::write(path, report.junit())
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        failed_to_write = true;
    }
    if failed_to_write {
        ExitCode::from(2)
    } else if report.outcomes.iter().any(|o| o.verdict == Verdict::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
