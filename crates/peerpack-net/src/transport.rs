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

/// Wraps a transport; dials outside the policy fail with `MultiaddrNotSupported`.
pub struct Filtered<T> {
    inner: T,
    policy: AddressPolicy,
    refused: Arc<AtomicU64>,
}

impl<T> Filtered<T> {
    /// Wrap `inner`; `refused` counts refused dials.
    pub fn new(inner: T, policy: AddressPolicy, refused: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            policy,
            refused,
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
        if !self.policy.allows(&addr) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%addr, policy = %self.policy, "refused to dial an address outside the policy");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
