//! Inbound substreams: read the header, then hand the stream to the loop; read a topic message.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::{mpsc, watch};

use crate::error::Error;
use crate::event::{EventSink, SwarmEvent};
use crate::keys::PublicKey;
use crate::msg::Report;
use crate::session::{MAX_MESSAGE, STEP_TIMEOUT};
use crate::stream::Stream;
use crate::wire::Header;

/// Reads a new substream's header (bounded in time) and reports the stream to the loop.
pub(crate) async fn read_header(report: mpsc::UnboundedSender<Report>, peer: PeerId, conn: ConnectionId, mut stream: libp2p::Stream) {
    if let Ok(Ok(header)) = tokio::time::timeout(STEP_TIMEOUT, Header::read(&mut stream)).await {
        let _ = report.send(Report::Inbound { peer, conn, header, stream });
    }
}

/// Reads one topic message (at most [`MAX_MESSAGE`] bytes, bounded in time) and emits it if we
/// joined its message topic.
pub(crate) async fn read_message(
    raw: libp2p::Stream,
    topic: String,
    remote: PublicKey,
    closed: watch::Receiver<Option<Error>>,
    joined: Arc<Mutex<HashSet<String>>>,
    events: EventSink,
) {
    let stream = Stream::new(raw, topic.clone(), remote, closed);
    let Ok(Ok(data)) = tokio::time::timeout(STEP_TIMEOUT * 6, stream.read_to_end_within(MAX_MESSAGE)).await else {
        return;
    };
    if joined.lock().unwrap_or_else(|p| p.into_inner()).contains(&topic) {
        let _ = events.send(SwarmEvent::Message { remote, topic, data });
    }
}
