//! peerpack's network layer: the libp2p node as an actor.
//!
//! This crate will own the Swarm (Kademlia, Gossipsub, Identify, request-response) in one
//! event-loop task and hand out a cheap `NetHandle`. It depends only on `peerpack-core`, so
//! it knows records and content ids but not SQL.
//!
//! # Layout
//! - [`protocol`]: the protocol identifiers and DHT key formats every peer agrees on.

pub mod protocol;
