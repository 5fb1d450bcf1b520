//! The tokens of the vectors, with fixed `iat`, `exp` and `jti` (the
//! builders draw a random `jti`, so the claims are written out here).

use aauth_protocol::ids::Scope;
use aauth_protocol::tokens::agent_token::AgentTokenClaims;
use aauth_protocol::tokens::auth_token::AuthTokenClaims;
use aauth_protocol::tokens::resource_token::ResourceTokenClaims;
use aauth_protocol::tokens::{Audience, Confirmation};
use serde_json::Map;

use crate::world::{
    AGENT, AGENT_KID, AUTH, AUTH_KID, DELEGATE_SUB, NOW, RESOURCE, RESOURCE_KID, World, kid, origin,
};
use crate::{Ctx, Result};

/// `now` as a NumericDate.
pub fn now() -> i64 {
    i64::try_from(NOW).unwrap_or(i64::MAX)
}

/// The scope of the vectors' auth tokens.
pub const AUTH_SCOPE: &str = "data.read data.write";

/// An agent token for the delegate, issued at `now`, valid one hour.
pub fn agent_claims(world: &World) -> Result<AgentTokenClaims> {
    Ok(AgentTokenClaims {
        iss: origin(AGENT)?,
        sub: DELEGATE_SUB.into(),
        exp: now() + 3600,
        iat: Some(now()),
        cnf: Confirmation {
            jwk: world.delegate.public().clone(),
        },
        aud: None,
    })
}

/// Signs agent token claims with the agent server's key.
pub fn sign_agent(world: &World, claims: &AgentTokenClaims) -> Result<String> {
    claims
        .sign(&world.agent_server.key, &kid(AGENT_KID)?)
        .ctx("agent token")
}

/// An auth token from the auth server for the agent at the resource.
pub fn auth_claims(world: &World) -> Result<AuthTokenClaims> {
    Ok(AuthTokenClaims {
        iss: origin(AUTH)?,
        aud: Audience::One(RESOURCE.into()),
        agent: Some(origin(AGENT)?),
        cnf: Confirmation {
            jwk: world.delegate.public().clone(),
        },
        exp: now() + 600,
        iat: Some(now()),
        nbf: Some(now()),
        jti: Some("auth-token-1".into()),
        agent_delegate: Some(DELEGATE_SUB.into()),
        scope: Some(Scope::parse(AUTH_SCOPE).ctx("scope")?),
        act: None,
        sub: None,
        extra: Map::new(),
    })
}

/// Signs auth token claims with the auth server's key.
pub fn sign_auth(world: &World, claims: &AuthTokenClaims) -> Result<String> {
    claims
        .sign(&world.auth.key, &kid(AUTH_KID)?)
        .ctx("auth token")
}

/// A resource token from the resource to the auth server for the agent,
/// bound to the delegate's key.
pub fn resource_claims(world: &World) -> Result<ResourceTokenClaims> {
    Ok(ResourceTokenClaims {
        iss: origin(RESOURCE)?,
        aud: Audience::One(AUTH.into()),
        agent: origin(AGENT)?,
        agent_jkt: world.delegate.public().thumbprint(),
        exp: now() + 300,
        iat: Some(now()),
        jti: Some("resource-token-1".into()),
        scope: Scope::parse("data.read").ctx("scope")?,
    })
}

/// Signs resource token claims with the resource's key.
pub fn sign_resource(world: &World, claims: &ResourceTokenClaims) -> Result<String> {
    claims
        .sign(&world.resource.key, &kid(RESOURCE_KID)?)
        .ctx("resource token")
}
