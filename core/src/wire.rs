//! Wire formats: the header every substream starts with, and the control-stream frames.
//! `docs/PROTOCOL.md` describes the same bytes in prose.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;

/// Version byte at the start of every substream header.
pub const VERSION: u8 = 1;
/// Longest stream or message-topic name, in bytes.
pub const MAX_NAME: usize = 1024;
/// Largest control frame payload.
const MAX_CONTROL: usize = 1024;

/// What a substream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The session's control stream (handshake, heartbeat, close).
    Control = 0,
    /// The session's default byte stream (Hyperswarm's socket).
    Socket = 1,
    /// A named stream (`create_stream` / `receive_stream`).
    Named = 2,
    /// A shared stream (`create_shared_stream`); only the leader opens these.
    Shared = 3,
    /// One topic message; the name is the message topic.
    Message = 4,
    /// A peer-exchange request and its answer (see `crate::exchange`).
    Exchange = 5,
    /// A topic peer-exchange request and its answer (see `crate::topic_exchange`).
    Topics = 6,
}

impl Kind {
    fn from_u8(b: u8) -> io::Result<Self> {
        Ok(match b {
            0 => Kind::Control,
            1 => Kind::Socket,
            2 => Kind::Named,
            3 => Kind::Shared,
            4 => Kind::Message,
            5 => Kind::Exchange,
            6 => Kind::Topics,
            _ => return Err(invalid(format!("unknown stream kind {b}"))),
        })
    }
}

/// The header an opener writes first: `version u8 | kind u8 | name_len u16 BE | name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub name: String,
}

impl Header {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Header { kind, name: name.into() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(4 + name.len());
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out
    }

    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Self> {
        let mut fixed = [0u8; 4];
        r.read_exact(&mut fixed).await?;
        if fixed[0] != VERSION {
            return Err(invalid(format!("unsupported stream header version {}", fixed[0])));
        }
        let kind = Kind::from_u8(fixed[1])?;
        let len = u16::from_be_bytes([fixed[2], fixed[3]]) as usize;
        if len > MAX_NAME {
            return Err(invalid("stream name too long".into()));
        }
        let mut name = vec![0u8; len];
        r.read_exact(&mut name).await?;
        let name = String::from_utf8(name).map_err(|_| invalid("stream name is not UTF-8".into()))?;
        Ok(Header { kind, name })
    }
}

/// A frame on the control stream: `len u32 BE | type u8 | payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Leader → follower: opens the handshake.
    Hello { session_id: [u8; 16], instance: u64, nonce: [u8; 32] },
    /// Follower → leader: answers it.
    HelloAck { instance: u64, nonce: [u8; 32] },
    /// Heartbeat, sent every second by both sides.
    Ping,
    /// A graceful close of the session.
    Close,
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        match self {
            Control::Hello { session_id, instance, nonce } => {
                body.push(1);
                body.extend_from_slice(session_id);
                body.extend_from_slice(&instance.to_be_bytes());
                body.extend_from_slice(nonce);
            }
            Control::HelloAck { instance, nonce } => {
                body.push(2);
                body.extend_from_slice(&instance.to_be_bytes());
                body.extend_from_slice(nonce);
            }
            Control::Ping => body.push(3),
            Control::Close => body.push(4),
        }
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(body: &[u8]) -> io::Result<Self> {
        let (&ty, rest) = body.split_first().ok_or_else(|| invalid("empty control frame".into()))?;
        let arr = |s: &[u8], n: usize| -> io::Result<Vec<u8>> {
            s.get(..n).map(|x| x.to_vec()).ok_or_else(|| invalid("short control frame".into()))
        };
        Ok(match ty {
            1 if rest.len() == 56 => Control::Hello {
                session_id: arr(rest, 16)?.try_into().unwrap(),
                instance: u64::from_be_bytes(rest[16..24].try_into().unwrap()),
                nonce: rest[24..56].try_into().unwrap(),
            },
            2 if rest.len() == 40 => Control::HelloAck {
                instance: u64::from_be_bytes(rest[..8].try_into().unwrap()),
                nonce: rest[8..40].try_into().unwrap(),
            },
            3 => Control::Ping,
            4 => Control::Close,
            _ => return Err(invalid(format!("bad control frame type {ty} / length {}", rest.len()))),
        })
    }

    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Self> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_CONTROL {
            return Err(invalid(format!("control frame length {len}")));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        Self::decode(&body)
    }

    pub async fn write<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&self.encode()).await?;
        w.flush().await
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header::new(Kind::Named, "files/ü");
        let bytes = h.encode();
        let back = futures::executor::block_on(Header::read(&mut &bytes[..])).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn control_round_trip_and_rejects() {
        for c in [
            Control::Hello { session_id: [7; 16], instance: 42, nonce: [9; 32] },
            Control::HelloAck { instance: u64::MAX, nonce: [1; 32] },
            Control::Ping,
            Control::Close,
        ] {
            let bytes = c.encode();
            assert_eq!(futures::executor::block_on(Control::read(&mut &bytes[..])).unwrap(), c);
        }
        assert!(Control::decode(&[1, 0]).is_err());
        assert!(Control::decode(&[9]).is_err());
        assert!(Header::read(&mut &[2u8, 0, 0, 0][..]).now_or_never_err());
    }

    trait NowOrNeverErr {
        fn now_or_never_err(self) -> bool;
    }
    impl<F: std::future::Future<Output = io::Result<Header>>> NowOrNeverErr for F {
        fn now_or_never_err(self) -> bool {
            futures::executor::block_on(self).is_err()
        }
    }
}
