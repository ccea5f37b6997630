//! A transport wrapper that refuses to dial addresses outside the node's [`AddressPolicy`].
//!
//! Filtering at the transport means no part of libp2p (Kademlia queries, the swarm's own
//! dialing, an explicit `dial`) can send a packet to a disallowed address, whatever told the
//! node about it. Refusals are counted for `status`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::{Multiaddr, Transport};

use crate::policy::AddressPolicy;

/// Addresses the operator asked to dial (bootstrap, `peerpack bootstrap`), without `/p2p`:
/// they may be anywhere in the policy's range. Every other address is one a peer advertised.
pub type OperatorAddrs = Arc<std::sync::Mutex<std::collections::HashSet<Multiaddr>>>;

/// Wraps a transport; dials outside the policy fail with `MultiaddrNotSupported`.
pub struct Filtered<T> {
    inner: T,
    policy: AddressPolicy,
    refused: Arc<AtomicU64>,
    operator: OperatorAddrs,
}

impl<T> Filtered<T> {
    /// Wrap `inner`; `refused` counts refused dials; `operator` holds the addresses the
    /// operator asked for.
    pub fn new(
        inner: T,
        policy: AddressPolicy,
        refused: Arc<AtomicU64>,
        operator: OperatorAddrs,
    ) -> Self {
        Self {
            inner,
            policy,
            refused,
            operator,
        }
    }

    fn allowed(&self, addr: &Multiaddr) -> bool {
        let bare = crate::policy::without_peer_id(addr);
        let by_operator = self
            .operator
            .lock()
            .map(|set| set.contains(&bare))
            .unwrap_or(false);
        if by_operator {
            self.policy.allows(addr)
        } else {
            self.policy.allows_learned(addr)
        }
    }
}

impl<T: Transport + Unpin> Transport for Filtered<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !self.allowed(&addr) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%addr, policy = %self.policy, "refused to dial an address outside the policy");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        // Dial from a fresh port, never from the listen port. With the listen port, two
        // peers dialling each other at once (a restarted node redialling the peers it knew,
        // while they redial it) open the same TCP 4-tuple from both ends: a simultaneous open
        // in which both sides start the Noise handshake as initiator and neither answers,
        // until the upgrade times out, again and again.
        self.inner.dial(
            addr,
            DialOpts {
                port_use: libp2p::core::transport::PortUse::New,
                ..opts
            },
        )
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::Endpoint;
    use libp2p::core::transport::{DialOpts, PortUse};

    use super::*;

    #[tokio::test]
    async fn dials_outside_the_policy_are_refused_before_any_socket_exists() {
        let refused = Arc::new(AtomicU64::new(0));
        let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default());
        let mut t = Filtered::new(
            tcp,
            AddressPolicy::LoopbackOnly,
            refused.clone(),
            OperatorAddrs::default(),
        );
        let opts = || DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        };
        for addr in [
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/8.8.8.8/tcp/53",
            "/dns4/example.org/tcp/80",
        ] {
            let result = t.dial(addr.parse().unwrap(), opts());
            assert!(
                matches!(result, Err(TransportError::MultiaddrNotSupported(_))),
                "{addr}"
            );
        }
        assert_eq!(refused.load(Ordering::Relaxed), 3);
        // A loopback address is handed to TCP (the dial future is created, not awaited).
        assert!(
            t.dial("/ip4/127.0.0.1/tcp/9".parse().unwrap(), opts())
                .is_ok()
        );
        assert_eq!(refused.load(Ordering::Relaxed), 3);
    }

    // A dial that asks to reuse the listen port still comes from a fresh one, so two peers
    // dialling each other at once never open the same TCP 4-tuple from both ends.
    #[tokio::test]
    async fn dials_come_from_a_fresh_port_not_the_listen_port() {
        let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default());
        let mut t = Filtered::new(
            tcp,
            AddressPolicy::LoopbackOnly,
            Arc::default(),
            OperatorAddrs::default(),
        );
        t.listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let listen_port = loop {
            match futures::future::poll_fn(|cx| Pin::new(&mut t).poll(cx)).await {
                TransportEvent::NewAddress { listen_addr, .. } => {
                    break listen_addr
                        .iter()
                        .find_map(|p| match p {
                            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                            _ => None,
                        })
                        .unwrap();
                }
                _ => continue,
            }
        };
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("/ip4/127.0.0.1/tcp/{}", server.local_addr().unwrap().port());
        let dial = t
            .dial(
                target.parse().unwrap(),
                DialOpts {
                    role: Endpoint::Dialer,
                    port_use: PortUse::Reuse,
                },
            )
            .unwrap();
        // Keep the transport polled (the listener) while the dial connects.
        let (_conn, (accepted, from)) =
            tokio::join!(dial, async { server.accept().await.unwrap() });
        drop(accepted);
        assert_ne!(from.port(), listen_port, "dialled from the listen port");
    }

    // Under `any`, addresses that peers advertise in loopback, private, link-local or CGNAT
    // ranges are refused before any socket exists; the operator's own are dialled.
    #[tokio::test]
    async fn under_any_only_the_operator_dials_local_ranges() {
        let refused = Arc::new(AtomicU64::new(0));
        let operator = OperatorAddrs::default();
        let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default());
        let mut t = Filtered::new(tcp, AddressPolicy::Any, refused.clone(), operator.clone());
        let opts = || DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        };
        let advertised = [
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/192.168.1.1/tcp/4001",
            "/ip4/169.254.1.1/tcp/4001",
            "/ip4/100.64.0.1/tcp/4001",
            "/ip4/127.0.0.1/tcp/9",
        ];
        for addr in advertised {
            let result = t.dial(addr.parse().unwrap(), opts());
            assert!(
                matches!(result, Err(TransportError::MultiaddrNotSupported(_))),
                "{addr}"
            );
        }
        assert_eq!(refused.load(Ordering::Relaxed), advertised.len() as u64);
        operator
            .lock()
            .unwrap()
            .insert("/ip4/127.0.0.1/tcp/9".parse().unwrap());
        // The operator's loopback address is handed to TCP (the future is not awaited).
        assert!(
            t.dial("/ip4/127.0.0.1/tcp/9".parse().unwrap(), opts())
                .is_ok()
        );
        assert_eq!(refused.load(Ordering::Relaxed), advertised.len() as u64);
    }
}
