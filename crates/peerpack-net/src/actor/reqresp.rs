//! Request-response in the event loop: catalogue sync and the blob exchange. Outbound requests
//! wait in a pending table until their response, their failure or their deadline; inbound
//! requests go to the node, whose answers come back as commands.

use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::behaviour::CONNECT_TIMEOUT;
use crate::behaviour::{BLOB_REQUEST_TIMEOUT, SYNC_REQUEST_TIMEOUT};
use crate::blob::{BlobRequest, BlobResponse};
use crate::error::Error;
use crate::error::RequestError;
use crate::event::Event;
use crate::pending::Pending;
use crate::sync::{SyncRequest, SyncResponse};

/// How long past the longest a request can take inside libp2p (dialing and upgrading a
/// connection, then the protocol's request timeout) the loop waits before giving up on it.
/// libp2p ends every request by then, so this only guards against a lost answer.
const REQUEST_MARGIN: Duration = Duration::from_secs(30);

/// Pending requests of one protocol: the peer asked, and where its response or an error goes.
pub(super) type PendingRequests<Resp, K = OutboundRequestId> =
    Pending<K, (PeerId, oneshot::Sender<Result<Resp, Error>>, tracing::Span)>;

impl EventLoop {
    // ---- commands ----

    pub(super) fn send_sync(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, Error>>,
    ) {
        let span = tracing::info_span!(
            "net.sync",
            %peer,
            request = request.kind(),
            result = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        let deadline = Instant::now() + CONNECT_TIMEOUT + SYNC_REQUEST_TIMEOUT + REQUEST_MARGIN;
        self.pending_sync.insert(id, (peer, reply, span), deadline);
    }

    pub(super) fn sync_respond(
        &mut self,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) {
        self.metrics.bytes("sync", "sent", sync_payload(&response));
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
        let span = match &request {
            BlobRequest::Range { offset, length, .. } => tracing::info_span!(
                "net.blob",
                %peer,
                request = "range",
                offset,
                length,
                result = tracing::field::Empty,
                bytes = tracing::field::Empty,
            ),
            BlobRequest::Outline { .. } => tracing::info_span!(
                "net.blob",
                %peer,
                request = "outline",
                result = tracing::field::Empty,
                bytes = tracing::field::Empty,
            ),
        };
        let id = self.swarm.behaviour_mut().blob.send_request(&peer, request);
        let deadline = Instant::now() + CONNECT_TIMEOUT + BLOB_REQUEST_TIMEOUT + REQUEST_MARGIN;
        self.pending_chunks
            .insert(id, (peer, reply, span), deadline);
    }

    pub(super) fn blob_respond(
        &mut self,
        channel: ResponseChannel<BlobResponse>,
        response: BlobResponse,
    ) {
        self.metrics.bytes("blob", "sent", blob_payload(&response));
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

    /// Fail the requests past their deadline.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        expire(&mut self.pending_sync, now, "sync");
        expire(&mut self.pending_chunks, now, "blob");
    }

    // ---- events ----

    pub(super) fn on_blob(&mut self, event: request_response::Event<BlobRequest, BlobResponse>) {
        if let Some((peer, request, channel)) = route(
            event,
            &mut self.pending_chunks,
            &self.metrics,
            "blob",
            blob_payload,
        ) {
            self.emit(Event::BlobRequested {
                peer,
                request,
                channel,
            });
        }
    }

    pub(super) fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        if let Some((peer, request, channel)) = route(
            event,
            &mut self.pending_sync,
            &self.metrics,
            "sync",
            sync_payload,
        ) {
            self.emit(Event::SyncRequested {
                peer,
                request,
                channel,
            });
        }
    }
}

/// The payload bytes of a blob response: the archive bytes or the outline's values.
fn blob_payload(r: &BlobResponse) -> u64 {
    match r {
        BlobResponse::Chunk { data, .. } => data.len() as u64,
        BlobResponse::Outline { values, .. } => values.len() as u64,
        _ => 0,
    }
}

/// The payload bytes of a sync response: the records of a page.
fn sync_payload(r: &SyncResponse) -> u64 {
    match r {
        SyncResponse::Page { records, .. } => records.iter().map(|r| r.len() as u64).sum(),
        _ => 0,
    }
}

/// Answer every request in `pending` past its deadline with a timeout.
fn expire<K: Eq + Hash, Resp>(
    pending: &mut PendingRequests<Resp, K>,
    now: Instant,
    protocol: &'static str,
) {
    for (_, (peer, reply, span)) in pending.expire(now) {
        span.record("result", "timeout");
        tracing::debug!(%peer, protocol, "request unanswered at its deadline");
        let _ = reply.send(Err(Error::Request {
            protocol,
            peer,
            reason: RequestError::Timeout,
        }));
    }
}

/// Route one request-response event: a response (its payload counted as received) or an
/// outbound failure answers the pending caller; an inbound request is returned for the node
/// to answer.
fn route<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut PendingRequests<Resp>,
    metrics: &crate::metrics::NetMetrics,
    protocol: &'static str,
    payload: fn(&Resp) -> u64,
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
                let bytes = payload(&response);
                metrics.bytes(protocol, "received", bytes);
                if let Some((_, reply, span)) = pending.remove(&request_id) {
                    span.record("result", "ok");
                    span.record("bytes", bytes);
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
            if let Some((_, reply, span)) = pending.remove(&request_id) {
                span.record("result", tracing::field::display(&error));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_requests_are_answered_with_a_timeout() {
        let now = Instant::now();
        let peer = PeerId::random();
        let mut pending = Pending::default();
        let (late_tx, mut late_rx) = oneshot::channel::<Result<(), Error>>();
        let (due_tx, mut due_rx) = oneshot::channel::<Result<(), Error>>();
        pending.insert(
            1,
            (peer, late_tx, tracing::Span::none()),
            now + Duration::from_secs(1),
        );
        pending.insert(2, (peer, due_tx, tracing::Span::none()), now);
        expire(&mut pending, now, "sync");
        match due_rx.try_recv() {
            Ok(Err(e @ Error::Request { .. })) => assert_eq!(
                e.to_string(),
                format!("sync request to {peer}: no response in time")
            ),
            other => panic!("{other:?}"),
        }
        assert!(late_rx.try_recv().is_err(), "not due yet");
        assert!(pending.remove(&1).is_some());
    }
}
