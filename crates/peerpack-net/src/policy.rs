//! Address hygiene: which addresses a node may dial or put in its routing table.
//!
//! Peers advertise addresses (Identify, Kademlia responses, provider records) that a node would
//! later dial. A forged or private address must never turn a node into a scanner of someone
//! else's network. So there are two scopes, both enforced in the transport itself (see
//! [`crate::transport`]):
//! - [`AddressPolicy::allows`]: what the operator may dial (bootstrap addresses, `peerpack
//!   bootstrap`): the policy's whole range;
//! - [`AddressPolicy::allows_learned`]: what a node may dial because a peer said so. Under
//!   `any` that is public unicast only, never loopback, private, link-local, CGNAT, multicast
//!   or unspecified; under `private` it is private ranges only. Only such addresses reach
//!   Kademlia.

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

    /// Whether the operator may have a node under this policy dial `addr`.
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

    /// Whether a node under this policy may dial `addr` because a peer advertised it: under
    /// `any` public unicast addresses only; under `private` private ranges only (not
    /// loopback); under `loopback-only` loopback.
    pub fn allows_learned(&self, addr: &Multiaddr) -> bool {
        if !self.allows(addr) {
            return false;
        }
        let scope = match addr.iter().next() {
            Some(Protocol::Ip4(ip)) => scope_v4(ip),
            Some(Protocol::Ip6(ip)) => match ip.to_ipv4_mapped() {
                Some(v4) => scope_v4(v4),
                None => scope_v6(ip),
            },
            // Names (under `any`) and in-memory addresses: as `allows` says.
            _ => return true,
        };
        match self {
            Self::LoopbackOnly => scope == Scope::Loopback,
            Self::Private => scope == Scope::Private,
            Self::Any => scope == Scope::Public,
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

/// Where an address lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Loopback,
    /// RFC 1918, CGNAT (100.64/10), link-local, unique local (fc00::/7).
    Private,
    Public,
    /// Unspecified, multicast, broadcast, reserved: never dialled.
    Other,
}

fn scope_v4(ip: Ipv4Addr) -> Scope {
    let o = ip.octets();
    if ip.is_loopback() {
        Scope::Loopback
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || o[0] >= 240
    {
        Scope::Other
    } else if ip.is_private() || ip.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        Scope::Private
    } else {
        Scope::Public
    }
}

fn scope_v6(ip: Ipv6Addr) -> Scope {
    let seg0 = ip.segments()[0];
    if ip.is_loopback() {
        Scope::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        Scope::Other
    } else if (seg0 & 0xfe00) == 0xfc00 || (seg0 & 0xffc0) == 0xfe80 {
        Scope::Private
    } else {
        Scope::Public
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
    fn learned_addresses_stay_in_their_scope() {
        let learned_under_any = [
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/192.168.1.1/tcp/4001",
            "/ip4/172.16.0.1/tcp/4001",
            "/ip4/169.254.1.1/tcp/4001",
            "/ip4/100.64.0.1/tcp/4001",
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/224.0.0.1/tcp/4001",
            "/ip4/255.255.255.255/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
            "/ip6/fd00::1/tcp/4001",
            "/ip6/::ffff:10.0.0.1/tcp/4001",
            "/ip6/ff02::1/tcp/4001",
        ];
        for bad in learned_under_any {
            assert!(!AddressPolicy::Any.allows_learned(&a(bad)), "{bad} allowed");
        }
        assert!(AddressPolicy::Any.allows_learned(&a("/ip4/8.8.8.8/tcp/4001")));
        assert!(AddressPolicy::Any.allows_learned(&a("/ip6/2001:db8::1/tcp/4001")));
        // The operator may still dial a LAN or loopback address under `any`.
        assert!(AddressPolicy::Any.allows(&a("/ip4/192.168.1.1/tcp/4001")));
        assert!(AddressPolicy::Any.allows(&a("/ip4/127.0.0.1/tcp/4001")));
        // `private` learns private ranges only.
        assert!(AddressPolicy::Private.allows_learned(&a("/ip4/10.1.2.3/tcp/1")));
        assert!(AddressPolicy::Private.allows_learned(&a("/ip6/fe80::1/tcp/1")));
        assert!(!AddressPolicy::Private.allows_learned(&a("/ip4/8.8.8.8/tcp/1")));
        assert!(!AddressPolicy::Private.allows_learned(&a("/ip4/127.0.0.1/tcp/1")));
        assert!(AddressPolicy::LoopbackOnly.allows_learned(&a("/ip4/127.0.0.1/tcp/1")));
        assert!(!AddressPolicy::LoopbackOnly.allows_learned(&a("/ip4/10.0.0.1/tcp/1")));
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

/// `addr` without a trailing `/p2p/<peer id>` ([`peer_id_of`]): the transport address, as the
/// operator's set and the routing table hold it.
pub fn without_peer_id(addr: &libp2p::Multiaddr) -> libp2p::Multiaddr {
    let mut bare = addr.clone();
    if peer_id_of(&bare).is_some() {
        bare.pop();
    }
    bare
}

/// The peer id an address ends with (`.../p2p/<peer id>`), if its last component is one.
pub fn peer_id_of(addr: &libp2p::Multiaddr) -> Option<libp2p::PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

#[cfg(test)]
mod peer_id_tests {
    use libp2p::multiaddr::Protocol;
    use libp2p::{Multiaddr, PeerId};

    use super::*;

    #[test]
    fn peer_id_of_reads_only_the_last_component() {
        let peer = PeerId::random();
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(peer_id_of(&bare), None);
        let full = bare.clone().with(Protocol::P2p(peer));
        assert_eq!(peer_id_of(&full), Some(peer));
        // A peer id followed by anything else is not the address's peer id.
        let relayed = full.with(Protocol::P2pCircuit);
        assert_eq!(peer_id_of(&relayed), None);
        assert_eq!(peer_id_of(&Multiaddr::empty()), None);
    }
}
