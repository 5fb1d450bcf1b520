#!/usr/bin/env python3
"""Thin drivers around the PyPI package `aauth` 0.1.0, the early-form peer.

Everything AAuth here is the library's: keys, JWKs and JWKS documents,
metadata documents, agent tokens, request signing, request verification,
Agent-Auth challenges and resource tokens. The drivers only add what the
library leaves to its user: HTTP servers and clients, fetching metadata and
key sets, choosing status codes and error bodies, and the order of steps.

  aauth_peer.py agent-server --port P
      An agent server: /.well-known/aauth-agent and its JWKS.
  aauth_peer.py agent --port P CALL...
      An agent with its own agent server on P and one delegate. Each CALL is
      SCHEME,METHOD,URL[,JSON] with SCHEME hwk, jwks (as the agent server) or jwt
      (as the delegate, with its agent token); a jwt call challenged for an
      auth token climbs (request_type=auth at the challenge's auth server,
      then the retry). Prints one JSON line per step; exits 0 when every
      call's last answer is 2xx.
  aauth_peer.py auth-server --port P
      What of an auth server the library supports: metadata, JWKS, and a
      token endpoint for request_type=auth that verifies the caller and its
      resource token and grants every identified agent what the resource
      token asks for (the library has no consent, code, refresh or exchange).
  aauth_peer.py resource --port P --auth-server URL
      A resource: /public (anyone), /whoami (identified), GET /data and
      POST /data (an auth token from URL with data.read, data.write),
      /resource/token, its metadata and JWKS.

Servers print `listening url=http://127.0.0.1:P` once they accept requests.
"""

import argparse
import asyncio
import json
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt

from aauth import (
    calculate_jwk_thumbprint,
    create_auth_token,
    generate_auth_metadata,
    verify_token,
    JWKSFetcher,
    ChallengeBuilder,
    RequestVerifier,
    ResourceTokenIssuer,
    create_agent_token,
    generate_agent_metadata,
    generate_ed25519_keypair,
    generate_jwks,
    generate_resource_metadata,
    jwk_to_public_key,
    parse_agent_auth_header,
    parse_signature_key,
    public_key_to_jwk,
    sign_request,
)

TIMEOUT = 10
MAX_BODY = 1024 * 1024


# --- HTTP, as the library leaves it to its user -----------------------------


def http(method, url, headers=None, body=None):
    """One request; (status, headers, body bytes). Never raises on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, lower(response.headers), response.read(MAX_BODY)
    except urllib.error.HTTPError as error:
        return error.code, lower(error.headers), error.read(MAX_BODY)


def lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def get_json(url):
    status, _, body = http("GET", url)
    if status != 200:
        raise ValueError(f"GET {url} answered {status}")
    return json.loads(body)


class KeySets:
    """The JWKS fetcher the library's verifier asks its user for, from an
    identifier (and a kid) to a key set: the library's own JWKSFetcher and
    its cache (an hour, keyed by JWKS URL and kid), through the agent's, the
    auth server's or the resource's metadata document."""

    def __init__(self):
        self.fetcher = JWKSFetcher()

    def __call__(self, identifier, kid=None):
        for well_known in ("aauth-agent", "aauth-issuer", "aauth-resource"):
            try:
                return asyncio.run(self.fetcher.fetch(identifier, kid=kid, well_known=well_known))
            except Exception:
                continue
        return None


def serve(port, handler):
    """Serves `handler` on 127.0.0.1:port in a thread; its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def reply(handler, status, document, extra=None):
    body = json.dumps(document).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


def caller_jwk(headers, keys):
    """The public JWK that signed a verified request: an agent token's or
    auth token's cnf.jwk, or the agent server's key by kid."""
    parsed = parse_signature_key(headers.get("signature-key", ""))
    params = parsed["params"]
    if parsed["scheme"] == "jwt":
        return pyjwt.decode(params["jwt"], options={"verify_signature": False})["cnf"]["jwk"]
    if parsed["scheme"] == "jwks":
        for candidate in (keys(params["id"]) or {}).get("keys", []):
            if candidate.get("kid") == params.get("kid"):
                return candidate
    if parsed["scheme"] == "hwk":
        return {"kty": params.get("kty"), "crv": params.get("crv"), "x": params.get("x")}
    return None


# --- The agent server --------------------------------------------------------


class AgentServer:
    """An agent server: its key, its metadata and JWKS, its delegates' tokens."""

    KID = "key-1"

    def __init__(self, port):
        self.key, public = generate_ed25519_keypair()
        self.jwk = public_key_to_jwk(public, kid=self.KID)
        owner = self

        class Handler(Quiet):
            def do_GET(self):
                if self.path == "/.well-known/aauth-agent":
                    reply(self, 200, generate_agent_metadata(owner.origin, owner.origin + "/jwks.json"))
                elif self.path == "/jwks.json":
                    reply(self, 200, generate_jwks([owner.jwk]))
                else:
                    reply(self, 404, {"error": "invalid_request"})

        self.origin = serve(port, Handler)

    def agent_token(self, delegate_public, sub="delegate-1"):
        return create_agent_token(
            iss=self.origin,
            sub=sub,
            cnf_jwk=public_key_to_jwk(delegate_public),
            private_key=self.key,
            kid=self.KID,
        )


# --- The agent ---------------------------------------------------------------


def step(**fields):
    print(json.dumps(fields), flush=True)


def signed_request(signer_key, scheme, method, url, body=None, content_type=None, **scheme_args):
    """Signs with the library. A POST carries a covered Nonce and covers its
    body (the library's own options for both, which a strict server needs)."""
    headers = {}
    components = None
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        headers["Nonce"] = secrets.token_urlsafe(16)
    if body:
        headers["Content-Type"] = content_type or "application/octet-stream"
        components = ["content-type", "content-digest"]
    headers.update(
        sign_request(
            method=method,
            target_uri=url,
            headers=headers,
            body=body,
            private_key=signer_key,
            sig_scheme=scheme,
            additional_signature_components=components,
            **scheme_args,
        )
    )
    return http(method, url, headers, body)


def agent(args):
    server = AgentServer(args.port)
    delegate_key, delegate_public = generate_ed25519_keypair()
    agent_token = server.agent_token(delegate_public)
    failed = 0
    for call in args.calls:
        scheme, method, url, *body = call.split(",", 3)
        body = body[0].encode() if body else None
        if scheme == "hwk":
            key, scheme_args = delegate_key, {}
        elif scheme == "jwks":
            key, scheme_args = server.key, {"id": server.origin, "kid": AgentServer.KID, "well-known": "aauth-agent"}
        else:
            key, scheme_args = delegate_key, {"jwt": agent_token}
        status = climb(key, scheme, scheme_args, method, url, body, delegate_key, agent_token)
        failed += not 200 <= status < 300
    return 1 if failed else 0


def climb(key, scheme, scheme_args, method, url, payload, delegate_key, agent_token):
    kind = "application/json" if payload else None
    status, headers, body = signed_request(key, scheme, method, url, payload, kind, **scheme_args)
    challenge = headers.get("agent-auth")
    step(step="request", scheme=scheme, url=url, status=status, body=body.decode(errors="replace")[:300],
         agent_auth=challenge)
    if scheme != "jwt" or status != 401 or not challenge or "auth-token" not in challenge:
        return status
    parsed = parse_agent_auth_header(challenge)
    if not parsed.get("resource_token") or not parsed.get("auth_server"):
        return status
    metadata = get_json(f"{parsed['auth_server']}/.well-known/aauth-issuer")
    form = urllib.parse.urlencode({"request_type": "auth", "resource_token": parsed["resource_token"]}).encode()
    status, _, answer = signed_request(
        delegate_key, "jwt", "POST", metadata["agent_token_endpoint"],
        body=form, content_type="application/x-www-form-urlencoded", jwt=agent_token,
    )
    step(step="auth", url=metadata["agent_token_endpoint"], status=status, body=answer.decode(errors="replace")[:300])
    if status != 200 or "auth_token" not in json.loads(answer):
        return status
    auth_token = json.loads(answer)["auth_token"]
    status, headers, body = signed_request(delegate_key, "jwt", method, url, payload, kind, jwt=auth_token)
    step(step="retry", scheme="jwt auth token", url=url, status=status, body=body.decode(errors="replace")[:300])
    return status


# --- The resource --------------------------------------------------------------


def resource(args):
    key, public = generate_ed25519_keypair()
    kid = "resource-key-1"
    jwk = public_key_to_jwk(public, kid=kid)
    keys = KeySets()
    auth_server = args.auth_server.rstrip("/")
    state = {}

    class Handler(Quiet):
        def read(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY)) if length else None

        def refuse(self, status, error, description, challenge=None):
            extra = {"Agent-Auth": challenge} if challenge else {}
            reply(self, status, {"error": error, "error_description": description}, extra)

        def verify(self, body, identity=False, auth=False):
            """The library's verification, and what it leaves open: which
            auth server is trusted, and the caller's key for a challenge."""
            verifier = RequestVerifier(
                canonical_authorities=[state["authority"]],
                jwks_fetcher=keys,
                trusted_auth_servers=[auth_server],
            )
            headers = {name.lower(): value for name, value in self.headers.items()}
            result = verifier.verify_request(
                self.command, state["origin"] + self.path, headers, body,
                require_identity=identity, require_auth_token=auth,
            )
            return result, headers

        def caller_key(self, headers):
            jwk = caller_jwk(headers, keys)
            return jwk_to_public_key(jwk) if jwk else None

        def do_GET(self):
            self.guarded(self.get)

        def do_POST(self):
            self.guarded(self.post)

        def guarded(self, handle):
            """What the library raises is the driver's 500, with its text: a
            crash is a finding, and a dropped connection would hide it."""
            try:
                handle()
            except Exception as error:
                reply(self, 500, {"error": "server_error", "error_description": repr(error)[:300]})

        def get(self):
            origin = state["origin"]
            path = urllib.parse.urlsplit(self.path).path
            if path == "/.well-known/aauth-resource":
                return reply(self, 200, generate_resource_metadata(
                    origin, origin + "/jwks.json", origin + "/resource/token", ["data.read"]))
            if path == "/jwks.json":
                return reply(self, 200, generate_jwks([jwk]))
            if path == "/public":
                return reply(self, 200, {"public": True})
            if path == "/whoami":
                return self.whoami(None)
            if path == "/data":
                return self.data()
            reply(self, 404, {"error": "invalid_request", "error_description": "no such endpoint"})

        def post(self):
            body = self.read()
            path = urllib.parse.urlsplit(self.path).path
            if path == "/resource/token":
                return self.resource_token(body)
            if path == "/data":
                return self.data(body)
            reply(self, 404, {"error": "invalid_request", "error_description": "no such endpoint"})

        def whoami(self, body):
            result, _ = self.verify(body, identity=True)
            if not result.get("valid"):
                error = result.get("error", "")
                if "identity required" in error:
                    return self.refuse(401, "insufficient_auth_level", error, "httpsig; identity")
                return self.refuse(401, "invalid_signature", error, "httpsig; identity")
            reply(self, 200, {"agent": result.get("agent_id"), "delegate": result.get("agent_delegate")})

        def data(self, body=None):
            """GET /data needs data.read; POST /data needs data.write."""
            needed = "data.write" if self.command == "POST" else "data.read"
            result, headers = self.verify(body)
            if not result.get("valid"):
                return self.refuse(401, "invalid_signature", result.get("error", ""), "httpsig; identity")
            builder = ChallengeBuilder(state["origin"], key, kid, auth_server)
            if result.get("scopes") is None:
                if not result.get("agent_id"):
                    return self.refuse(401, "insufficient_auth_level", "identify first", "httpsig; identity")
                challenge = builder.build_challenge(
                    require_auth_token=True, agent_id=result["agent_id"],
                    agent_public_key=self.caller_key(headers), scope=needed)
                return self.refuse(401, "insufficient_auth_level", "an auth token is needed", challenge)
            token = parse_signature_key(headers["signature-key"])["params"]["jwt"]
            claims = pyjwt.decode(token, options={"verify_signature": False})
            if claims.get("iss") != auth_server or claims.get("aud") != state["origin"]:
                return self.refuse(401, "invalid_auth_token", "not from the trusted auth server for this resource",
                                   "httpsig; auth-token")
            if needed not in result["scopes"]:
                challenge = builder.build_challenge(
                    require_auth_token=True, agent_id=result["agent_id"],
                    agent_public_key=self.caller_key(headers), scope=needed)
                return self.refuse(403, "insufficient_scope", f"{needed} is needed", challenge)
            if self.command == "POST":
                return reply(self, 201, {"stored": True})
            reply(self, 200, {"notes": [], "user": result.get("user_sub"), "agent": result.get("agent_id")})

        def resource_token(self, body):
            result, headers = self.verify(body, identity=True)
            if not result.get("valid"):
                return self.refuse(401, "invalid_signature", result.get("error", ""), "httpsig; identity")
            form = urllib.parse.parse_qs((body or b"").decode(errors="replace"))
            scope = (form.get("scope") or ["data.read"])[0]
            issuer = ResourceTokenIssuer(state["origin"], key, kid, auth_server)
            token = issuer.issue_token(result["agent_id"], self.caller_key(headers), scope)
            reply(self, 200, {"resource_token": token, "auth_server": auth_server})

    state["origin"] = serve(args.port, Handler)
    state["authority"] = state["origin"].split("://", 1)[1]
    print(f"listening url={state['origin']}", flush=True)
    threading.Event().wait()


# --- The auth server ---------------------------------------------------------


def auth_server(args):
    key, public = generate_ed25519_keypair()
    kid = "as-key-1"
    jwk = public_key_to_jwk(public, kid=kid)
    keys = KeySets()
    state = {}

    class Handler(Quiet):
        def do_GET(self):
            origin = state["origin"]
            path = urllib.parse.urlsplit(self.path).path
            if path == "/.well-known/aauth-issuer":
                return reply(self, 200, generate_auth_metadata(
                    origin, origin + "/jwks.json", origin + "/token", origin + "/consent",
                    request_types_supported=["auth"]))
            if path == "/jwks.json":
                return reply(self, 200, generate_jwks([jwk]))
            reply(self, 404, {"error": "invalid_request", "error_description": "no such endpoint"})

        def do_POST(self):
            try:
                self.token()
            except Exception as error:
                reply(self, 500, {"error": "server_error", "error_description": repr(error)[:300]})

        def token(self):
            if urllib.parse.urlsplit(self.path).path != "/token":
                return reply(self, 404, {"error": "invalid_request", "error_description": "no such endpoint"})
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY)) if length else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            verifier = RequestVerifier(canonical_authorities=[state["authority"]], jwks_fetcher=keys)
            result = verifier.verify_request("POST", state["origin"] + self.path, headers, body,
                                             require_identity=True)
            if not result.get("valid"):
                return reply(self, 401, {"error": "invalid_signature", "error_description": result.get("error")},
                             {"Agent-Auth": "httpsig; identity"})
            form = urllib.parse.parse_qs((body or b"").decode(errors="replace"))
            if form.get("request_type") != ["auth"]:
                return reply(self, 400, {"error": "unsupported_request_type",
                                         "error_description": "only request_type=auth"})
            try:
                claims = verify_token((form.get("resource_token") or [""])[0], keys,
                                      expected_typ="resource+jwt", expected_aud=state["origin"])
            except Exception as error:
                return reply(self, 400, {"error": "invalid_resource_token", "error_description": str(error)})
            signer = caller_jwk(headers, keys)
            if claims.get("agent") != result["agent_id"] or claims.get("agent_jkt") != calculate_jwk_thumbprint(signer):
                return reply(self, 400, {"error": "invalid_resource_token",
                                         "error_description": "the resource token is for another agent or key"})
            token = create_auth_token(
                iss=state["origin"], aud=claims["iss"], agent=result["agent_id"], cnf_jwk=signer,
                scope=claims.get("scope", ""), private_key=key, kid=kid,
                agent_delegate=result.get("agent_delegate"))
            reply(self, 200, {"auth_token": token, "expires_in": 3600})

    state["origin"] = serve(args.port, Handler)
    state["authority"] = state["origin"].split("://", 1)[1]
    print(f"listening url={state['origin']}", flush=True)
    threading.Event().wait()


def agent_server(args):
    server = AgentServer(args.port)
    print(f"listening url={server.origin}", flush=True)
    threading.Event().wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("agent-server")
    p.add_argument("--port", type=int, default=0)
    p = commands.add_parser("agent")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("calls", nargs="+", metavar="SCHEME,METHOD,URL[,JSON]")
    p = commands.add_parser("auth-server")
    p.add_argument("--port", type=int, default=0)
    p = commands.add_parser("resource")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--auth-server", required=True)
    args = parser.parse_args()
    if args.command == "agent":
        return agent(args)
    if args.command == "resource":
        return resource(args)
    if args.command == "auth-server":
        return auth_server(args)
    return agent_server(args)


if __name__ == "__main__":
    sys.exit(main())
