//! A session's control task: heartbeat, silence detection and graceful close.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::swarm::ConnectionId;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::link::{Activation, CONTROL_ENDED};
use crate::msg::Report;
use crate::session::{PING_INTERVAL, SILENCE_LIMIT};
use crate::wire::Control;

/// Runs a session's control stream once the loop activated it: heartbeat, silence detection and
/// graceful close. Reports to the loop when the session ends, with the reason.
pub(crate) async fn run_control(
    control: libp2p::Stream,
    activation: Activation,
    conn: ConnectionId,
    session_id: [u8; 16],
    report: mpsc::UnboundedSender<Report>,
) {
    let (mut rd, mut wr) = control.split();
    let mut closed = activation.closed;
    let reader = async {
        loop {
            match tokio::time::timeout(SILENCE_LIMIT, Control::read(&mut rd)).await {
                Err(_) => return Error::Timeout("peer silent for 5 s".into()),
                // Only our own code writes the control stream, so a clean end of it without a
                // Close frame is a deliberate close whose frame lost the race with the FIN — or
                // a relay that closed the circuit: the state tells them apart (it knows which
                // connections are relayed).
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Error::Closed(CONTROL_ENDED.into());
                }
                Ok(Err(e)) => return Error::Reset(format!("control stream: {e}")),
                Ok(Ok(Control::Close)) => return Error::Closed("closed by the remote".into()),
                Ok(Ok(_)) => {}
            }
        }
    };
    let writer = async {
        let mut tick = tokio::time::interval(PING_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = Control::Ping.write(&mut wr).await {
                return Error::Reset(format!("control stream: {e}"));
            }
        }
    };
    let reason = tokio::select! {
        r = reader => r,
        r = writer => r,
        reason = crate::stream::wait_closed(&mut closed) => {
            // Say goodbye so the remote ends at once, not after the silence limit.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                let _ = Control::Close.write(&mut wr).await;
                let _ = wr.close().await;
            }).await;
            reason
        }
    };
    let _ = report.send(Report::SessionEnded { conn, session_id, reason });
}
