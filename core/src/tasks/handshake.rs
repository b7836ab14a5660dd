//! The session handshake, run in its own task per connection so the event loop never waits.
//!
//! ```text
//! leader  → follower   Hello { session_id, leader instance, leader nonce }
//! follower → leader    HelloAck { follower instance, follower nonce }
//! leader               verdict (dedup): accept → opens the socket stream; duplicate → closes
//! follower             the socket stream's arrival is the acceptance
//! ```
//! The control stream is opened by the leader, or by a follower that wants the session
//! ("knock": it opens the stream and waits for the leader's Hello on it). Each task stays alive as
//! the session's control task once the loop activates it.

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use rand::RngCore;
use tokio::sync::oneshot;

use super::TaskCtx;
use super::control::run_control;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::link::{Activation, Handshake};
use crate::msg::Report;
use crate::session::{STEP_TIMEOUT, open_raw};
use crate::state::dedup::Role;
use crate::wire::{Control, Header, Kind};

/// Runs the leader's side on `conn`; `control` is a knock stream the follower opened, if any.
pub(crate) async fn lead(ctx: TaskCtx, peer: PeerId, remote: PublicKey, conn: ConnectionId, control: Option<libp2p::Stream>) {
    let res = async {
        if !ctx.gate.allows(remote).await {
            return Err(Error::Firewalled("rejected by the firewall".into()));
        }
        let mut control = match control {
            Some(s) => s,
            None => open_raw(&ctx.link, peer, conn, Header::new(Kind::Control, "")).await?,
        };
        let mut session_id = [0u8; 16];
        let mut nonce = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut session_id);
        rand::thread_rng().fill_bytes(&mut nonce);
        step(Control::Hello { session_id, instance: ctx.instance, nonce }.write(&mut control)).await?;
        match step(Control::read(&mut control)).await? {
            Control::HelloAck { instance, nonce: follower_nonce } => Ok((
                control,
                Handshake { session_id, leader_nonce: nonce, follower_nonce, remote_instance: instance },
            )),
            other => Err(Error::Reset(format!("expected HelloAck, got {other:?}"))),
        }
    }
    .await;
    finish(ctx, peer, conn, Role::Leader, res, None).await
}

/// Runs the follower's side on an inbound control stream (or on its own knock stream).
pub(crate) async fn follow(ctx: TaskCtx, peer: PeerId, remote: PublicKey, conn: ConnectionId, mut control: libp2p::Stream) {
    let res = async {
        let hello = step(Control::read(&mut control)).await?;
        let Control::Hello { session_id, instance, nonce } = hello else {
            return Err(Error::Reset(format!("expected Hello, got {hello:?}")));
        };
        if !ctx.gate.allows(remote).await {
            return Err(Error::Firewalled("rejected by the firewall".into()));
        }
        let mut mine = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut mine);
        Ok((control, Handshake { session_id, leader_nonce: nonce, follower_nonce: mine, remote_instance: instance }))
    }
    .await;
    let ack = res.as_ref().ok().map(|(_, hs)| Control::HelloAck { instance: ctx.instance, nonce: hs.follower_nonce });
    finish(ctx, peer, conn, Role::Follower, res, ack).await
}

/// A follower that wants a session opens the control stream itself and waits for Hello on it.
pub(crate) async fn knock(ctx: TaskCtx, peer: PeerId, remote: PublicKey, conn: ConnectionId) {
    match open_raw(&ctx.link, peer, conn, Header::new(Kind::Control, "knock")).await {
        Ok(s) => follow(ctx, peer, remote, conn, s).await,
        Err(error) => {
            let _ = ctx.report.send(Report::HandshakeFailed { peer, conn, session_id: None, error });
        }
    }
}

/// Reports the handshake to the loop, then (if activated) runs the session's control stream.
/// The follower's ack is written only after the report, so the loop knows the handshake before
/// the leader can open the socket stream.
async fn finish(
    ctx: TaskCtx,
    peer: PeerId,
    conn: ConnectionId,
    role: Role,
    res: Result<(libp2p::Stream, Handshake)>,
    ack: Option<Control>,
) {
    let (mut control, hs) = match res {
        Ok(x) => x,
        Err(error) => {
            let _ = ctx.report.send(Report::HandshakeFailed { peer, conn, session_id: None, error });
            return;
        }
    };
    let (tx, rx) = oneshot::channel::<Activation>();
    let session_id = hs.session_id;
    if ctx.report.send(Report::Handshaked { peer, conn, role, handshake: hs, activate: tx }).is_err() {
        return;
    }
    if let Some(ack) = ack {
        if let Err(error) = step(ack.write(&mut control)).await {
            let _ = ctx.report.send(Report::HandshakeFailed { peer, conn, session_id: Some(session_id), error });
            return;
        }
    }
    // The loop drops `tx` if the connection lost to a duplicate or closed.
    if let Ok(Ok(activation)) = tokio::time::timeout(STEP_TIMEOUT * 2, rx).await {
        run_control(control, activation, conn, session_id, ctx.report).await;
    }
}

async fn step<T>(fut: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Err(_) => Err(Error::Timeout("session handshake".into())),
        Ok(Err(e)) => Err(Error::Reset(format!("session handshake: {e}"))),
        Ok(Ok(v)) => Ok(v),
    }
}
