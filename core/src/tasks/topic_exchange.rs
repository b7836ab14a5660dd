//! Topic peer exchange over a substream (see [`crate::topic_exchange`]): ask a member which
//! other members of our topics it knows; answer such a request.

use futures::AsyncWriteExt;
use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::link::LinkCmd;
use crate::msg::Report;
use crate::session::{STEP_TIMEOUT, open_raw};
use crate::topic::Topic;
use crate::topic_exchange::{self, Member};
use crate::wire::{Header, Kind};

/// Asks `peer` (session on `conn`, whose handshake hash is `hash`) about `topics` (each with
/// whether we serve it); reports the
/// members it names. Failures are only logged: the next round asks again.
pub(crate) async fn ask(
    link: mpsc::UnboundedSender<LinkCmd>,
    report: mpsc::UnboundedSender<Report>,
    peer: PeerId,
    conn: ConnectionId,
    topics: Vec<(Topic, bool)>,
    hash: [u8; 32],
) {
    let tags: Vec<topic_exchange::Named> = topics.iter().map(|(t, server)| (topic_exchange::tag(&hash, t), *server)).collect();
    let run = async {
        let mut raw = open_raw(&link, peer, conn, Header::new(Kind::Topics, "")).await?;
        let io = |e: std::io::Error| Error::Reset(format!("topic exchange: {e}"));
        raw.write_all(&topic_exchange::encode_request(&tags)).await.map_err(io)?;
        raw.flush().await.map_err(io)?;
        topic_exchange::read_answer(&mut raw, tags.len()).await.map_err(io)
    };
    match tokio::time::timeout(STEP_TIMEOUT, run).await {
        Ok(Ok(members)) if !members.is_empty() => {
            let members = members.into_iter().map(|m| (topics[m.index as usize].0, m)).collect();
            let _ = report.send(Report::TopicMembers { from: peer, members });
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(%peer, "topic exchange: {e}"),
        Err(_) => tracing::debug!(%peer, "topic exchange: no answer in time"),
    }
}

/// Serves one request from `asker`: reads its tags, lets the loop match them and choose the
/// members, writes the answer.
pub(crate) async fn serve(report: mpsc::UnboundedSender<Report>, asker: PeerId, mut stream: libp2p::Stream) {
    let serve = async {
        let tags = topic_exchange::read_request(&mut stream).await?;
        let (tx, rx) = oneshot::channel();
        let _ = report.send(Report::TopicsAsked { asker, tags, reply: tx });
        let members: Vec<Member> = rx.await.map_err(|_| std::io::Error::other("swarm closed"))?;
        stream.write_all(&topic_exchange::encode_answer(&members)).await?;
        stream.close().await
    };
    let timed = tokio::time::timeout(STEP_TIMEOUT, serve).await;
    if let Err(e) = timed.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
        tracing::debug!("topic exchange request: {e}");
    }
}
