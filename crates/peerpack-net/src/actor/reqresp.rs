//! Request-response in the event loop: catalogue sync and the blob exchange. Outbound requests
//! wait in a pending table until their response or their failure; inbound requests go to the
//! node, whose answers come back as commands.

use std::collections::HashMap;
use std::sync::Arc;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::blob::{BlobRequest, BlobResponse};
use crate::error::RequestError;
use crate::sync::{SyncRequest, SyncResponse};
use crate::{Error, Event};

/// Pending requests of one protocol: where each response or error goes.
pub(super) type PendingRequests<Resp> =
    HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, Error>>>;

impl EventLoop {
    // ---- commands ----

    pub(super) fn send_sync(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, Error>>,
    ) {
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending_sync.insert(id, reply);
    }

    pub(super) fn sync_respond(
        &mut self,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("sync response not sent: the peer went away");
        }
    }

    pub(super) fn fetch_chunk(
        &mut self,
        peer: PeerId,
        request: BlobRequest,
        reply: oneshot::Sender<Result<BlobResponse, Error>>,
    ) {
        let id = self.swarm.behaviour_mut().blob.send_request(&peer, request);
        self.pending_chunks.insert(id, reply);
    }

    pub(super) fn blob_respond(
        &mut self,
        channel: ResponseChannel<BlobResponse>,
        response: BlobResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .blob
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("blob response not sent: the peer went away");
        }
    }

    // ---- events ----

    pub(super) fn on_blob(&mut self, event: request_response::Event<BlobRequest, BlobResponse>) {
        if let Some((peer, request, channel)) = route(event, &mut self.pending_chunks, "blob") {
            self.emit(Event::BlobRequested {
                peer,
                request,
                channel,
            });
        }
    }

    pub(super) fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        if let Some((peer, request, channel)) = route(event, &mut self.pending_sync, "sync") {
            self.emit(Event::SyncRequested {
                peer,
                request,
                channel,
            });
        }
    }
}

/// Route one request-response event: a response or an outbound failure answers the pending
/// caller; an inbound request is returned for the node to answer.
fn route<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut PendingRequests<Resp>,
    protocol: &'static str,
) -> Option<(PeerId, Req, ResponseChannel<Resp>)> {
    match event {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request {
                request, channel, ..
            } => {
                return Some((peer, request, channel));
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                if let Some(reply) = pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
        },
        request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            tracing::debug!(%peer, %error, protocol, "request failed");
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(Error::Request {
                    protocol,
                    peer,
                    reason: RequestError::Outbound(Arc::new(error)),
                }));
            }
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, protocol, "inbound request failed");
        }
        request_response::Event::ResponseSent { .. } => {}
    }
    None
}
