//! Hostile peers against the routing table's rules (docs/PROTOCOL.md §8.1).
//!
//! The hostile peer here is a plain libp2p swarm, not peerpack's network layer: it speaks
//! Identify and peerpack's Kademlia protocol, and says whatever it likes in them.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, kad, noise, tcp, yamux};
use peerpack_net::protocol::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
use peerpack_net::{Event, NetHandle};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(30);

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

#[derive(NetworkBehaviour)]
struct Hostile {
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

/// A peer that listens on `first` addresses, dials `target`, and opens `n` more listeners
/// each time the test sends `n`; Identify pushes each new set of addresses to the node.
/// Returns its id and the sender.
async fn hostile_peer(first: usize, target: Multiaddr) -> (PeerId, mpsc::Sender<usize>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(libp2p::StreamProtocol::new(KAD_PROTOCOL)),
            );
            kad.set_mode(Some(kad::Mode::Server));
            Hostile {
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                        .with_push_listen_addr_updates(true),
                ),
                kad,
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let peer = *swarm.local_peer_id();
    for _ in 0..first {
        swarm.listen_on(loopback()).unwrap();
    }
    let mut listening = 0;
    while listening < first {
        if let SwarmEvent::NewListenAddr { .. } = swarm.select_next_some().await {
            listening += 1;
        }
    }
    swarm.dial(target).unwrap();
    let (more, mut asked) = mpsc::channel::<usize>(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                n = asked.recv() => match n {
                    Some(n) => for _ in 0..n {
                        swarm.listen_on(loopback()).unwrap();
                    },
                    None => break,
                },
                _ = swarm.select_next_some() => {}
            }
        }
    });
    (peer, more)
}

/// The addresses `node`'s routing table holds for `peer`, once it holds any.
async fn routing_addresses(node: &NetHandle, peer: PeerId) -> Vec<Multiaddr> {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let table = node.routing_table().await.unwrap();
            if let Some(entry) = table.into_iter().find(|e| e.peer_id == peer) {
                return entry.addresses;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the peer to enter the routing table")
}

/// Wait until the node has an Identify message from `peer` naming at least `count` addresses.
async fn identified(events: &mut mpsc::Receiver<Event>, peer: PeerId, count: usize) {
    tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.recv().await {
            if let Event::Identified {
                peer: p, addresses, ..
            } = event
                && p == peer
                && addresses.len() >= count
            {
                return;
            }
        }
        panic!("the node's events ended");
    })
    .await
    .expect("an Identify message with the new addresses");
}

// A peer that advertises many addresses, and then pushes more through Identify, holds at most 8
// in the node's routing table: each would be one more dial when the node looks for it, and a
// peer could otherwise grow its entry without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_grow_its_routing_entry_past_eight_addresses() {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let node = peerpack_net::spawn(peerpack_net::Config::new(key, vec![loopback()]))
        .await
        .unwrap();
    let mut events = node.events;
    let target = node.listen_addrs[0].clone();

    let (peer, more) = hostile_peer(12, target).await;
    identified(&mut events, peer, 12).await;
    let first = routing_addresses(&node.handle, peer).await;
    assert!(
        (1..=8).contains(&first.len()),
        "{} addresses after the first Identify message",
        first.len()
    );

    // Twelve more, pushed in two rounds.
    for round in 1..=2 {
        more.send(6).await.unwrap();
        identified(&mut events, peer, 12 + 6 * round).await;
        let held = routing_addresses(&node.handle, peer).await;
        assert!(
            held.len() <= 8,
            "{} addresses after push {round}: {held:?}",
            held.len()
        );
    }
    node.handle.shutdown().await.unwrap();
}
