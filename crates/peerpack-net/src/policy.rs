//! Address hygiene: which addresses a node may dial or put in its routing table.
//!
//! Peers advertise addresses (Identify, Kademlia responses, provider records) that a node would
//! later dial. A forged or private address must never turn a node into a scanner of someone
//! else's network, so every dial goes through [`AddressPolicy::allows`] (enforced in the
//! transport itself, see [`crate::transport`]) and only allowed addresses reach Kademlia.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// The address ranges a node may dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressPolicy {
    /// 127.0.0.0/8 and ::1 only. The default when every listen address is loopback (tests,
    /// the demo).
    LoopbackOnly,
    /// Loopback plus private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7,
    /// link-local): a LAN deployment.
    Private,
    /// Any unicast address, and DNS names: a node on the internet.
    Any,
}

impl AddressPolicy {
    /// The default for a node listening on `listen`: loopback only when every listen address
    /// is loopback, else any.
    pub fn default_for(listen: &[Multiaddr]) -> Self {
        if !listen.is_empty() && listen.iter().all(is_loopback) {
            Self::LoopbackOnly
        } else {
            Self::Any
        }
    }

    /// Whether a node under this policy may dial `addr`.
    pub fn allows(&self, addr: &Multiaddr) -> bool {
        match addr.iter().next() {
            Some(Protocol::Ip4(ip)) => self.allows_v4(ip),
            Some(Protocol::Ip6(ip)) => self.allows_v6(ip),
            Some(
                Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_),
            ) => *self == Self::Any,
            Some(Protocol::Memory(_)) => true,
            _ => false,
        }
    }

    fn allows_v4(&self, ip: Ipv4Addr) -> bool {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return false;
        }
        let private = ip.is_private()
            || ip.is_link_local()
            || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64;
        match self {
            Self::LoopbackOnly => ip.is_loopback(),
            Self::Private => ip.is_loopback() || private,
            Self::Any => true,
        }
    }

    fn allows_v6(&self, ip: Ipv6Addr) -> bool {
        if ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        if let Some(v4) = ip.to_ipv4_mapped() {
            return self.allows_v4(v4);
        }
        let seg0 = ip.segments()[0];
        let private = (seg0 & 0xfe00) == 0xfc00 || (seg0 & 0xffc0) == 0xfe80;
        match self {
            Self::LoopbackOnly => ip.is_loopback(),
            Self::Private => ip.is_loopback() || private,
            Self::Any => true,
        }
    }
}

/// Whether `addr` is a loopback (or in-memory) address.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    AddressPolicy::LoopbackOnly.allows(addr)
}

impl std::fmt::Display for AddressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LoopbackOnly => "loopback-only",
            Self::Private => "private",
            Self::Any => "any",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_only_refuses_everything_else() {
        let p = AddressPolicy::LoopbackOnly;
        assert!(p.allows(&a("/ip4/127.0.0.1/tcp/4001")));
        assert!(p.allows(&a("/ip4/127.8.9.1/tcp/1")));
        assert!(p.allows(&a("/ip6/::1/tcp/1")));
        for bad in [
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/192.168.0.1/tcp/1",
            "/ip4/8.8.8.8/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
            "/dns4/localhost/tcp/1",
            "/ip6/fe80::1/tcp/1",
            "/ip6/::ffff:10.0.0.1/tcp/1",
        ] {
            assert!(!p.allows(&a(bad)), "{bad} allowed");
        }
    }

    #[test]
    fn private_and_any() {
        assert!(AddressPolicy::Private.allows(&a("/ip4/10.1.2.3/tcp/1")));
        assert!(AddressPolicy::Private.allows(&a("/ip4/100.64.0.1/tcp/1")));
        assert!(!AddressPolicy::Private.allows(&a("/ip4/8.8.8.8/tcp/1")));
        assert!(AddressPolicy::Any.allows(&a("/ip4/8.8.8.8/tcp/1")));
        assert!(!AddressPolicy::Any.allows(&a("/ip4/0.0.0.0/tcp/1")));
        assert!(!AddressPolicy::Any.allows(&a("/ip4/224.0.0.1/tcp/1")));
    }

    #[test]
    fn default_follows_listen_addresses() {
        assert_eq!(
            AddressPolicy::default_for(&[a("/ip4/127.0.0.1/tcp/0")]),
            AddressPolicy::LoopbackOnly
        );
        assert_eq!(
            AddressPolicy::default_for(&[a("/ip4/0.0.0.0/tcp/0")]),
            AddressPolicy::Any
        );
        assert_eq!(
            AddressPolicy::default_for(&[a("/ip4/127.0.0.1/tcp/0"), a("/ip4/0.0.0.0/tcp/0")]),
            AddressPolicy::Any
        );
    }
}
