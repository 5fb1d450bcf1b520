//! Which addresses discovery may connect to (profile: P-MD-3).
//!
//! Metadata and JWKS URLs come from peers: an agent names its own origin in
//! `Signature-Key`, a token names its issuer. Fetching them is hostile input.
//! Outside dev mode only public addresses are reachable; in dev mode loopback
//! is reachable too (that is where the dev-mode identifiers of P-MD-1 live),
//! private and link-local ranges never. The check runs on the *resolved*
//! addresses, through [`GuardedResolver`], so a public name that resolves to
//! a private address is refused as well. [`Lookup`] is the seam unit tests
//! use to exercise the resolver without sending traffic.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use aauth_protocol::ids::OriginMode;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 127.0.0.0/8 or ::1 outside dev mode.
    Loopback,
    /// RFC 1918, RFC 6598 shared space, or IPv6 unique local.
    Private,
    /// 169.254.0.0/16 or fe80::/10.
    LinkLocal,
    /// 0.0.0.0, ::, broadcast, multicast, documentation or reserved ranges.
    Special,
}

impl Refusal {
    /// A short phrase for error descriptions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::Special => "an unspecified, multicast or reserved address",
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(Refusal::Private)
    } else if ip.is_link_local() {
        Some(Refusal::LinkLocal)
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // 192.0.0.0/24 (IETF protocol assignments), 198.18.0.0/15 (benchmarking).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
    {
        Some(Refusal::Special)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address carries and would reach: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = |hi: u16, lo: u16| {
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(tail(hi, lo)),
        // Not `::` and `::1`, which are classified as themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(tail(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(hi, lo)),
        [0x2002, hi, lo, ..] => Some(tail(hi, lo)),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let [first, second, ..] = ip.segments();
    if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if first & 0xfe00 == 0xfc00 {
        Some(Refusal::Private)
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        // fe80::/10 link-local; fec0::/10, the deprecated site-local range.
        Some(Refusal::LinkLocal)
    } else if ip.is_unspecified() || ip.is_multicast() || (first == 0x2001 && second == 0x0db8) {
        Some(Refusal::Special)
    } else {
        None
    }
}

/// Whether discovery may connect to `ip` in `mode` (P-MD-3).
pub fn check_address(ip: IpAddr, mode: OriginMode) -> Result<(), Refusal> {
    let refusal = match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    };
    match (refusal, mode) {
        (None, _) | (Some(Refusal::Loopback), OriginMode::Dev) => Ok(()),
        (Some(refusal), _) => Err(refusal),
    }
}

/// A boxed lookup future.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a host name to addresses: the system resolver in servers, a
/// fixed table in tests.
pub trait Lookup: Send + Sync {
    /// The addresses of `host`.
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A reqwest resolver that drops every refused address and fails when none
/// is left, so a connection can only ever go to an allowed address.
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    mode: OriginMode,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// A resolver over `lookup` for `mode`.
    pub fn new(lookup: Arc<dyn Lookup>, mode: OriginMode) -> Self {
        Self { lookup, mode }
    }

    /// Resolves `host` and keeps only the allowed addresses.
    pub async fn resolve_allowed(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = self.lookup.lookup(host).await?;
        let mut last_refusal = None;
        let allowed: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|ip| match check_address(*ip, self.mode) {
                Ok(()) => true,
                Err(refusal) => {
                    last_refusal = Some(refusal);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            let why = last_refusal.map_or("no address", Refusal::as_str);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{host} resolves only to {why}, which discovery may not reach"),
            ));
        }
        Ok(allowed)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.resolve_allowed(name.as_str()).await?;
            let iter: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(iter)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(Vec<IpAddr>);

    impl Lookup for Table {
        fn lookup(&self, _host: &str) -> LookupFuture {
            let addrs = self.0.clone();
            Box::pin(async move { Ok(addrs) })
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn refuses_private_link_local_loopback_and_unspecified_outside_dev() {
        // profile: P-MD-3
        let cases = [
            ("10.1.2.3", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("100.64.0.1", Refusal::Private),
            ("fd00::1", Refusal::Private),
            ("169.254.169.254", Refusal::LinkLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("127.0.0.1", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("::ffff:10.0.0.1", Refusal::Private),
            ("0.0.0.0", Refusal::Special),
            ("::", Refusal::Special),
            ("255.255.255.255", Refusal::Special),
            ("224.0.0.1", Refusal::Special),
            ("192.0.0.8", Refusal::Special),
            ("198.18.0.1", Refusal::Special),
            // IPv6 forms that reach an IPv4 address.
            ("64:ff9b::a9fe:a9fe", Refusal::LinkLocal),
            ("2002:a00:1::1", Refusal::Private),
            ("::10.0.0.1", Refusal::Private),
            ("fec0::1", Refusal::LinkLocal),
        ];
        for (text, refusal) in cases {
            assert_eq!(
                check_address(ip(text), OriginMode::Production),
                Err(refusal),
                "{text}"
            );
        }
        for public in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert_eq!(check_address(ip(public), OriginMode::Production), Ok(()));
        }
    }

    #[test]
    fn dev_mode_reaches_loopback_but_never_private_ranges() {
        assert_eq!(check_address(ip("127.0.0.1"), OriginMode::Dev), Ok(()));
        assert_eq!(check_address(ip("::1"), OriginMode::Dev), Ok(()));
        assert_eq!(
            check_address(ip("10.0.0.1"), OriginMode::Dev),
            Err(Refusal::Private)
        );
        assert_eq!(
            check_address(ip("169.254.169.254"), OriginMode::Dev),
            Err(Refusal::LinkLocal)
        );
    }

    #[tokio::test]
    async fn resolver_drops_refused_addresses_and_fails_when_none_is_left() {
        let mixed = GuardedResolver::new(
            Arc::new(Table(vec![ip("10.0.0.1"), ip("93.184.215.14")])),
            OriginMode::Production,
        );
        assert_eq!(
            mixed.resolve_allowed("agent.example").await.unwrap(),
            vec![ip("93.184.215.14")]
        );
        let private = GuardedResolver::new(
            Arc::new(Table(vec![ip("192.168.0.10")])),
            OriginMode::Production,
        );
        let error = private.resolve_allowed("agent.example").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("private"), "{error}");
    }
}
