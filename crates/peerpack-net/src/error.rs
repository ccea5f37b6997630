//! The network layer's errors: [`Error`], and the typed causes its variants carry.
//!
//! Each cause is the underlying libp2p error where there is one (a dial, a listener, the DHT
//! store, a gossip publish, a request-response failure), or one of our own (a deadline of the
//! event loop). The messages are those of the causes: `Error`'s text is the same as when the
//! causes were carried as strings. libp2p's errors are not `Clone`, and `Error` crosses the
//! handle in `oneshot` replies, so they are held in an [`Arc`].

use std::io;
use std::sync::Arc;

use libp2p::swarm::DialError;
use libp2p::{
    BehaviourBuilderError, Multiaddr, PeerId, TransportBuilderError, TransportError, gossipsub,
    kad, request_response,
};

use crate::policy::AddressPolicy;

/// Network errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address without the `/p2p/<peer id>` component.
    #[error(
        "address {0} has no /p2p/<peer id> component; peerpack needs the peer id to check whom it reaches (copy the full address a node prints, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...)"
    )]
    MissingPeerId(Multiaddr),
    /// An address outside the node's address policy.
    #[error(
        "address {addr} is outside this node's address policy ({policy}); it will not be dialled"
    )]
    AddressNotAllowed {
        /// The address.
        addr: Multiaddr,
        /// The policy.
        policy: AddressPolicy,
    },
    /// An address of this very node.
    #[error("address {0} is this node itself")]
    DialSelf(Multiaddr),
    /// A dial could not start.
    #[error("cannot dial: {0}")]
    Dial(#[source] Arc<DialError>),
    /// A dial started but no connection came of it.
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The peer.
        peer: PeerId,
        /// Why (the transport's error, or the deadline).
        reason: String,
    },
    /// Listening failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        reason: ListenError,
    },
    /// A DHT operation failed.
    #[error("DHT: {0}")]
    Dht(#[source] DhtError),
    /// Gossip publishing failed.
    #[error("gossip: {0}")]
    Gossip(#[source] Arc<gossipsub::PublishError>),
    /// A request (catalogue sync, blob exchange) to a peer failed.
    #[error("{protocol} request to {peer}: {reason}")]
    Request {
        /// Which protocol: `sync` or `blob`.
        protocol: &'static str,
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        #[source]
        reason: RequestError,
    },
    /// Building the swarm failed.
    #[error("cannot start the network: {0}")]
    Setup(#[source] SetupError),
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
}

/// Why a listener could not start, or stopped before it had an address.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The transport refused the address.
    #[error(transparent)]
    Transport(Arc<TransportError<io::Error>>),
    /// The listener closed before it had an address, with an error or without.
    #[error("{}", closed_reason(.0.as_deref()))]
    Closed(#[source] Option<Arc<io::Error>>),
    /// The listener failed.
    #[error(transparent)]
    Listener(Arc<io::Error>),
    /// Another socket holds the port.
    #[error(
        "the port is taken ({0}); is another peerpack node running there? Choose another port, or tcp/0 for a free one"
    )]
    InUse(#[source] Arc<io::Error>),
}

/// How a closed listener's reason has always been shown: the `Debug` text of its `Result`.
fn closed_reason(error: Option<&io::Error>) -> String {
    match error {
        None => "Ok(())".to_owned(),
        Some(e) => format!("Err({e:?})"),
    }
}

/// Why a DHT operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The local record store refused the record.
    #[error(transparent)]
    Store(kad::store::Error),
    /// The query was still unanswered at the event loop's deadline, well after Kademlia's own
    /// query timeout should have ended it.
    #[error("the query did not finish in time")]
    Timeout,
}

/// Why a request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// libp2p reported the failure (dial, timeout, connection closed, unsupported protocol,
    /// I/O).
    #[error(transparent)]
    Outbound(Arc<request_response::OutboundFailure>),
    /// No response and no failure by the event loop's deadline, well after the protocol's own
    /// request timeout should have ended it.
    #[error("no response in time")]
    Timeout,
}

/// Why the swarm could not be built or started.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The transport could not be built.
    #[error(transparent)]
    Transport(Arc<TransportBuilderError>),
    /// The behaviour could not be built.
    #[error(transparent)]
    Behaviour(Arc<BehaviourBuilderError>),
    /// A listener got no address within the start-up wait.
    #[error("no listen address after 10 s")]
    NoListenAddress,
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn errors_cross_the_handle() {
        assert_shareable::<Error>();
    }

    // The text is what it was when the causes were strings.
    #[test]
    fn messages_are_those_of_the_causes() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let io = || io::Error::new(io::ErrorKind::AddrInUse, "in use");
        let closed = Error::Listen {
            addr: addr.clone(),
            reason: ListenError::Closed(Some(Arc::new(io()))),
        };
        assert_eq!(
            closed.to_string(),
            format!("cannot listen on {addr}: {:?}", Err::<(), _>(io()))
        );
        let closed_ok = Error::Listen {
            addr: addr.clone(),
            reason: ListenError::Closed(None),
        };
        assert_eq!(
            closed_ok.to_string(),
            format!("cannot listen on {addr}: {:?}", Ok::<(), io::Error>(()))
        );
        let failed = Error::Listen {
            addr: addr.clone(),
            reason: ListenError::Listener(Arc::new(io())),
        };
        assert_eq!(
            failed.to_string(),
            format!("cannot listen on {addr}: {}", io())
        );

        let publish = gossipsub::PublishError::NoPeersSubscribedToTopic;
        let expected = format!("gossip: {publish}");
        assert_eq!(Error::Gossip(Arc::new(publish)).to_string(), expected);

        let store = kad::store::Error::MaxRecords;
        let expected = format!("DHT: {store}");
        assert_eq!(Error::Dht(DhtError::Store(store)).to_string(), expected);

        let peer = PeerId::random();
        let failure = request_response::OutboundFailure::UnsupportedProtocols;
        let expected = format!("blob request to {peer}: {failure}");
        let request = Error::Request {
            protocol: "blob",
            peer,
            reason: RequestError::Outbound(Arc::new(failure)),
        };
        assert_eq!(request.to_string(), expected);

        assert_eq!(
            Error::Setup(SetupError::NoListenAddress).to_string(),
            "cannot start the network: no listen address after 10 s"
        );
    }

    #[test]
    fn causes_are_sources() {
        let io = io::Error::new(io::ErrorKind::AddrInUse, "in use");
        let e = Error::Listen {
            addr: Multiaddr::empty(),
            reason: ListenError::Closed(Some(Arc::new(io))),
        };
        let reason = e.source().and_then(|s| s.downcast_ref::<ListenError>());
        assert!(matches!(reason, Some(ListenError::Closed(Some(_)))));
        assert!(reason.and_then(|r| r.source()).is_some());

        let e = Error::Request {
            protocol: "sync",
            peer: PeerId::random(),
            reason: RequestError::Timeout,
        };
        assert!(matches!(
            e.source().and_then(|s| s.downcast_ref::<RequestError>()),
            Some(RequestError::Timeout)
        ));
        assert!(Error::Stopped.source().is_none());
    }
}
