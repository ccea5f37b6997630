//! Gossipsub in the event loop: publishing announcements (retried on each tick and each new
//! subscription until a peer is subscribed or their patience runs out) and inbound messages,
//! which go to the node for validation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::error::Error;
use crate::event::Event;
use crate::protocol::Topic;

/// How long an announcement waits for a subscribed peer before giving up.
const ANNOUNCE_PATIENCE: Duration = Duration::from_secs(5);

/// An announcement not yet published.
pub(super) struct PendingAnnounce {
    topic: Topic,
    data: Vec<u8>,
    reply: oneshot::Sender<Result<usize, Error>>,
}

impl EventLoop {
    // ---- commands ----

    pub(super) fn start_announce(
        &mut self,
        topic: Topic,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<usize, Error>>,
    ) {
        let id = self.next_announce;
        self.next_announce += 1;
        let pending = PendingAnnounce { topic, data, reply };
        self.announce(id, pending, Instant::now() + ANNOUNCE_PATIENCE);
    }

    fn ident_topic(&self, topic: Topic) -> IdentTopic {
        self.topics
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, i)| i.clone())
            .unwrap_or_else(|| IdentTopic::new(topic.name()))
    }

    /// Publish, or keep the announcement `id` pending until `deadline` while peers may still
    /// subscribe.
    fn announce(&mut self, id: u64, pending: PendingAnnounce, deadline: Instant) {
        let topic = self.ident_topic(pending.topic);
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic.hash()))
            .count();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, pending.data.clone())
        {
            Ok(_) | Err(PublishError::Duplicate) => {
                let _ = pending.reply.send(Ok(subscribed));
            }
            // With no connection at all, established or being dialled, there is nobody to wait
            // for; otherwise subscriptions may still be on their way: retry until the deadline.
            Err(PublishError::NoPeersSubscribedToTopic)
                if self.connections.is_empty()
                    && self
                        .swarm
                        .network_info()
                        .connection_counters()
                        .num_pending()
                        == 0 =>
            {
                let _ = pending.reply.send(Ok(0));
            }
            Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::AllQueuesFull(_))
                if Instant::now() < deadline =>
            {
                self.pending_announces.insert(id, pending, deadline);
            }
            Err(e) => {
                let _ = pending.reply.send(Err(Error::Gossip(Arc::new(e))));
            }
        }
    }

    /// Make a last attempt at each announcement past its deadline: published, or answered with
    /// the reason it could not be.
    pub(super) fn expire_announces(&mut self, now: Instant) {
        for (id, pending) in self.pending_announces.expire(now) {
            self.announce(id, pending, now);
        }
    }

    /// Try every pending announcement again, oldest first.
    pub(super) fn retry_announces(&mut self) {
        for (id, pending, deadline) in self.pending_announces.drain() {
            self.announce(id, pending, deadline);
        }
    }

    // ---- events ----

    pub(super) fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => match self
                .topics
                .iter()
                .find(|(_, t)| t.hash() == message.topic)
                .map(|(t, _)| *t)
            {
                Some(topic) => self.emit(Event::Announcement {
                    topic,
                    source: propagation_source,
                    message_id,
                    data: message.data,
                    origin: message.source,
                }),
                None => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            },
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(%peer_id, %topic, "peer subscribed");
                self.retry_announces();
            }
            other => tracing::debug!(?other, "gossipsub event"),
        }
    }
}
