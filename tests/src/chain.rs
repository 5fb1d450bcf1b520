//! A multi-hop world: an agent calls R1, which calls R2, which calls R3,
//! each resource acting as an agent towards the next and exchanging the
//! auth token it received for one the next resource accepts (E§3.9, E§9.10,
//! profile: P-AS-7, P-MD-4). Two auth servers, so the exchange crosses them:
//!
//! ```text
//! agent ──AS1 token──▶ R1 ──(exchange at AS2: AS1 token)──▶ R2 ──(exchange at AS2: AS2 token)──▶ R3
//! ```
//!
//! AS1 protects R1 and lets the agent read the chain on its own; AS2
//! protects R2 and R3, trusts AS1's and its own tokens as upstream tokens,
//! and lets R1 and R2 exchange them for `chain.read` — or, with
//! [`ChainOptions::consent_for_r2`] / [`ChainOptions::consent_for_r3`],
//! only with the user's consent, so that the resource must ask for the
//! user (P-UI-1..3): R1 at AS2 for R2 (one level), R2 at AS2 for R3, which
//! bubbles up through R1 (two levels).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aauth_agent::{Agent, ConsentHandler, Principal, TokenStore};
use aauth_http::client::{Identity, SigningClient};
use aauth_http::runtime::ServerKey;
use aauth_protocol::ids::{Origin, OriginMode};

use crate::harness::{PORT_RETRIES, Party, free_port, write_file};
use crate::world::{self, ALICE, ALICE_HASH, WorldError};

/// Options of the chain.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// The most `act` levels AS2 mints (P-AS-7, default 5).
    pub max_exchange_depth: u32,
    /// Whether AS2 trusts AS1's tokens as upstream tokens.
    pub trust_as1: bool,
    /// AS2 grants R1's exchange for R2 only with the user's consent.
    pub consent_for_r2: bool,
    /// AS2 grants R2's exchange for R3 only with the user's consent.
    pub consent_for_r3: bool,
    /// AS1's auth token lifetime, seconds.
    pub as1_token_lifetime: u32,
}

impl Default for ChainOptions {
    fn default() -> Self {
        Self {
            max_exchange_depth: 5,
            trust_as1: true,
            consent_for_r2: false,
            consent_for_r3: false,
            as1_token_lifetime: 600,
        }
    }
}

/// The running chain.
#[derive(Debug)]
pub struct Chain {
    _dir: tempfile::TempDir,
    root: PathBuf,
    agent_config: PathBuf,
    /// The agent server.
    pub agent_server: Party,
    /// The agent's auth server (protects R1).
    pub as1: Party,
    /// The second auth server (protects R2 and R3, runs the exchanges).
    pub as2: Party,
    /// The first resource.
    pub r1: Party,
    /// The second resource.
    pub r2: Party,
    /// The last resource.
    pub r3: Party,
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn serve(config: &Path, port: u16, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "serve".into(),
        "--dev".into(),
        "--config".into(),
        config.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    args.extend_from_slice(extra);
    args
}

impl Chain {
    /// Writes the configurations and starts the six processes.
    pub fn start(options: &ChainOptions) -> Result<Self, WorldError> {
        let mut retries = PORT_RETRIES;
        loop {
            match Self::start_once(options) {
                Err(WorldError::Harness(error)) if error.is_port_taken() && retries > 0 => {
                    retries -= 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn start_once(options: &ChainOptions) -> Result<Self, WorldError> {
        let dir = tempfile::Builder::new()
            .prefix("aauth-chain-")
            .tempdir()
            .map_err(|e| WorldError::Other(format!("temporary directory: {e}")))?;
        let root = dir.path().to_owned();
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let [agent, as1, as2, r1, r2, r3] =
            [0, 1, 2, 3, 4, 5].map(|i| ports.get(i).copied().unwrap_or(0));
        let (agent_url, as1_url, as2_url) = (url(agent), url(as1), url(as2));
        let (r1_url, r2_url, r3_url) = (url(r1), url(r2), url(r3));

        let agent_config = write_file(
            &root,
            "agent-server.toml",
            "name = \"Demo travel agent\"\nstate_dir = \"agent-server\"\n",
        )?;
        let as1_config = write_file(
            &root,
            "as1.toml",
            &format!(
                r#"database = "as1.db"
auth_token_lifetime = {lifetime}

[[users]]
username = "{ALICE}"
password_hash = "{ALICE_HASH}"
sub = "user-alice"

[[autonomous]]
agent = "{agent_url}"
resource = "{r1_url}"
scopes = ["chain.read"]
"#,
                lifetime = options.as1_token_lifetime,
            ),
        )?;
        let mut trusted = vec![as2_url.clone()];
        if options.trust_as1 {
            trusted.insert(0, as1_url.clone());
        }
        // `chain.read` is granted without the user unless the options say
        // the hop needs the user's consent.
        let rule = |upstream: &str, caller: &str, consent: bool| {
            let (granted, asked) = if consent {
                ("", "\"chain.read\"")
            } else {
                ("\"chain.read\"", "")
            };
            format!(
                "[[exchange]]\nupstream_issuer = \"{upstream}\"\ncaller = \"{caller}\"\n\
                 scopes = [{granted}]\nconsent_scopes = [{asked}]\n\n"
            )
        };
        let mut exchange = String::new();
        if options.trust_as1 {
            exchange.push_str(&rule(&as1_url, &r1_url, options.consent_for_r2));
        }
        exchange.push_str(&rule(&as2_url, &r2_url, options.consent_for_r3));
        let as2_config = write_file(
            &root,
            "as2.toml",
            &format!(
                "database = \"as2.db\"\nmax_exchange_depth = {}\ntrusted_issuers = [{}]\n\n\
                 [[users]]\nusername = \"{ALICE}\"\npassword_hash = \"{ALICE_HASH}\"\n\
                 sub = \"user-alice\"\n\n{exchange}",
                options.max_exchange_depth,
                quoted(&trusted)
            ),
        )?;
        // R2 and R3 are behind AS2: the only auth server R1 and R2 send a
        // caller's token to.
        let resource = |name: &str, auth: &str, downstream: Option<&str>| {
            let mut text = format!(
                "auth_server = \"{auth}\"\nkey_file = \"{name}-key.json\"\nname = \"Resource {}\"\n",
                name.to_uppercase()
            );
            if let Some(downstream) = downstream {
                text.push_str(&format!(
                    "downstream = \"{downstream}/chain\"\ndownstream_auth_server = \"{as2_url}\"\n"
                ));
            }
            write_file(&root, &format!("{name}.toml"), &text)
        };
        let r1_config = resource("r1", &as1_url, Some(&r2_url))?;
        let r2_config = resource("r2", &as2_url, Some(&r3_url))?;
        let r3_config = resource("r3", &as2_url, None)?;

        let agent_server = Party::start(
            "aauth-agent-server",
            "agent-server",
            &serve(&agent_config, agent, &[]),
            &root,
        )?;
        let as1 = Party::start(
            "aauth-auth-server",
            "as1",
            &serve(&as1_config, as1, &[]),
            &root,
        )?;
        let as2 = Party::start(
            "aauth-auth-server",
            "as2",
            &serve(&as2_config, as2, &[]),
            &root,
        )?;
        let r3 = Party::start("aauth-resource", "r3", &serve(&r3_config, r3, &[]), &root)?;
        let r2 = Party::start("aauth-resource", "r2", &serve(&r2_config, r2, &[]), &root)?;
        let r1 = Party::start("aauth-resource", "r1", &serve(&r1_config, r1, &[]), &root)?;
        Ok(Self {
            _dir: dir,
            root,
            agent_config,
            agent_server,
            as1,
            as2,
            r1,
            r2,
            r3,
        })
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// A resource's own signing identity (its key file, P-MD-4), for
    /// requests the tests craft as that resource.
    pub fn resource_identity(&self, party: &Party, name: &str) -> Result<Identity, WorldError> {
        let key = ServerKey::load_or_create(&self.root.join(format!("{name}-key.json")))
            .map_err(|e| WorldError::Other(e.to_string()))?;
        Ok(Identity::AgentServer {
            agent: Origin::parse(party.url(), OriginMode::Dev)
                .map_err(|e| WorldError::Other(e.to_string()))?,
            kid: key.kid,
            key: Arc::new(key.key),
        })
    }

    /// The agent server's own signing key, as it created it on disk.
    pub fn agent_server_key(&self) -> Result<ServerKey, WorldError> {
        ServerKey::load_or_create(&self.root.join("agent-server/key.json"))
            .map_err(|e| WorldError::Other(e.to_string()))
    }

    /// An agent acting as a newly enrolled delegate of the agent server,
    /// its state in `name` under the run's directory (P-DEL-1).
    pub async fn delegate_agent(
        &self,
        name: &str,
        consent: Arc<dyn ConsentHandler>,
    ) -> Result<Agent, WorldError> {
        let code = world::mint_code(&self.root, &self.agent_config, None)?;
        let delegate = world::enroll(&self.root, self.agent_server.url(), &code, name).await?;
        world::delegate_agent(delegate, consent)
    }

    /// An agent acting as the agent server itself.
    pub fn server_agent(&self, consent: Arc<dyn ConsentHandler>) -> Result<Agent, WorldError> {
        let key = self.agent_server_key()?;
        let agent = Origin::parse(self.agent_server.url(), OriginMode::Dev)
            .map_err(|e| WorldError::Other(e.to_string()))?;
        let client = SigningClient::new().map_err(|e| WorldError::Other(e.to_string()))?;
        Ok(Agent::new(
            client,
            Principal::Server {
                agent,
                kid: key.kid,
                key: Arc::new(key.key),
            },
            TokenStore::memory(),
            consent,
            OriginMode::Dev,
        )?)
    }
}
