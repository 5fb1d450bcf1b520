//! The per-route layer and the extractor of the verified caller.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aauth_http::server::{ErrorResponse, read_body};
use aauth_protocol::challenge::Level;
use aauth_protocol::error::Condition;
use aauth_protocol::ids::{Origin, Thumbprint};
use aauth_protocol::verify::VerifiedRequest;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::{Guard, Need};

/// What a request needs, decided from its head and its body; `Err` refuses
/// it as it is (a body the decision cannot read, for instance).
pub type NeedFn = dyn Fn(&Parts, &[u8]) -> Result<Need, ErrorResponse> + Send + Sync;

/// The need of every request through a layer: one for the route, or one
/// decided per request.
#[derive(Clone)]
enum Needs {
    Fixed(Need),
    PerRequest(Arc<NeedFn>),
}

impl std::fmt::Debug for Needs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(need) => f.debug_tuple("Fixed").field(need).finish(),
            Self::PerRequest(_) => f.write_str("PerRequest(..)"),
        }
    }
}

impl Guard {
    /// The layer that lets through only requests meeting `need`, and
    /// answers the others with their error and challenge.
    pub fn layer(&self, need: Need) -> RequireLayer {
        RequireLayer {
            guard: self.clone(),
            needs: Needs::Fixed(need),
        }
    }

    /// Like [`Guard::layer`], with the need decided for each request by
    /// `decide` from its head and its (bounded) body: one endpoint whose
    /// operations need different levels, such as an MCP server's tools
    /// ([`crate::mcp::McpNeeds`]).
    pub fn layer_fn<F>(&self, decide: F) -> RequireLayer
    where
        F: Fn(&Parts, &[u8]) -> Result<Need, ErrorResponse> + Send + Sync + 'static,
    {
        RequireLayer {
            guard: self.clone(),
            needs: Needs::PerRequest(Arc::new(decide)),
        }
    }
}

/// See [`Guard::layer`] and [`Guard::layer_fn`].
#[derive(Debug, Clone)]
pub struct RequireLayer {
    guard: Guard,
    needs: Needs,
}

impl<S> tower::Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            guard: self.guard.clone(),
            needs: self.needs.clone(),
        }
    }
}

/// The service [`RequireLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    guard: Guard,
    needs: Needs,
}

impl<S> tower::Service<Request> for RequireService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service made ready is the one that is called; a clone takes
        // its place (tower's usual pattern).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let (guard, needs) = (self.guard.clone(), self.needs.clone());
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The signature may cover the body (Content-Digest): it is read
            // whole, within the bound, then handed on.
            let body = match read_body(body, guard.max_body()).await {
                Ok(body) => body,
                Err(error) => return Ok(error.into_response()),
            };
            let need = match &needs {
                Needs::Fixed(need) => *need,
                Needs::PerRequest(decide) => match decide(&parts, &body) {
                    Ok(need) => need,
                    Err(error) => return Ok(error.into_response()),
                },
            };
            match guard.require(&parts, &body, need).await {
                Ok(verified) => {
                    parts.extensions.insert(Caller(Arc::new(verified)));
                    inner
                        .call(Request::from_parts(parts, Body::from(body)))
                        .await
                }
                Err(error) => Ok(error.into_response()),
            }
        })
    }
}

/// Who called a route behind [`Guard::layer`]: the verified request, with
/// its level, agent, delegate, user and key.
#[derive(Debug, Clone)]
pub struct Caller(Arc<VerifiedRequest>);

impl Caller {
    /// Everything the verification established.
    pub fn verified(&self) -> &VerifiedRequest {
        &self.0
    }

    /// The level the request reached (P-CH-2).
    pub fn level(&self) -> Level {
        self.0.level()
    }

    /// The agent, from the agent token, the `jwks_uri` key or the auth
    /// token (none when pseudonymous).
    pub fn agent(&self) -> Option<&Origin> {
        self.0.agent()
    }

    /// The agent delegate's `sub`, when a delegate signed.
    pub fn delegate(&self) -> Option<&str> {
        self.0.delegate()
    }

    /// The user the auth token names (`sub`), when it names one.
    pub fn user(&self) -> Option<&str> {
        self.0
            .auth_token()
            .and_then(|token| token.claims().sub.as_deref())
    }

    /// Whether the auth token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0
            .auth_token()
            .and_then(|token| token.scope())
            .is_some_and(|granted| granted.contains(scope))
    }

    /// The RFC 7638 thumbprint of the key that signed the request.
    pub fn key_thumbprint(&self) -> &Thumbprint {
        self.0.thumbprint()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a handler asks for the Caller on a route without Guard::layer");
            ErrorResponse::new(
                Condition::ServerFault,
                "this route is not protected (no aauth_axum::Guard::layer)",
            )
            .into_response()
        })
    }
}
