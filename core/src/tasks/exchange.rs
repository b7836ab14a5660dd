//! Peer exchange over a substream: ask a peer for another peer; serve such a request.

use std::collections::HashSet;

use futures::AsyncWriteExt;
use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::exchange::{self, Request};
use crate::keys::PublicKey;
use crate::link::LinkCmd;
use crate::msg::{ConnectReply, Report};
use crate::session::{STEP_TIMEOUT, open_raw};
use crate::wire::{Header, Kind};

/// Asks `via` (over session connection `conn`) for another peer, excluding `request`'s keys,
/// and reports the answer with the caller's `reply`.
pub(crate) async fn ask(
    link: mpsc::UnboundedSender<LinkCmd>,
    report: mpsc::UnboundedSender<Report>,
    via: PeerId,
    conn: ConnectionId,
    request: Request,
    reply: ConnectReply,
) {
    let request = request.encode();
    let ask = async {
        let mut raw = open_raw(&link, via, conn, Header::new(Kind::Exchange, "")).await?;
        let io = |e: std::io::Error| Error::Reset(format!("peer exchange: {e}"));
        raw.write_all(&request).await.map_err(io)?;
        raw.flush().await.map_err(io)?;
        exchange::read_answer(&mut raw).await.map_err(io)
    };
    let result: Result<exchange::Answer> = match tokio::time::timeout(STEP_TIMEOUT, ask).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout("waiting for a peer-exchange answer".into())),
    };
    let _ = report.send(Report::ExchangeAnswer { via, result, reply });
}

/// Serves one request from `asker` (key `key`): reads it, lets the loop choose the offer once
/// the request has arrived (by then a peer whose session was settling counts), writes the answer.
pub(crate) async fn serve(report: mpsc::UnboundedSender<Report>, asker: PeerId, key: PublicKey, mut stream: libp2p::Stream) {
    let serve = async {
        let req = Request::read(&mut stream).await?;
        let mut exclude: HashSet<PublicKey> = req.exclude.into_iter().collect();
        exclude.insert(key);
        let (tx, rx) = oneshot::channel();
        let _ = report.send(Report::ExchangeChoose { asker, exclude, reply: tx });
        let answer = rx.await.map_err(|_| std::io::Error::other("swarm closed"))?;
        stream.write_all(&exchange::encode_answer(&answer)).await?;
        stream.close().await
    };
    let timed = tokio::time::timeout(STEP_TIMEOUT, serve).await;
    if let Err(e) = timed.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
        tracing::debug!("peer-exchange request: {e}");
    }
}
