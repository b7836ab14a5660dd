//! Withdrawing an announce. Kademlia has no message to remove a provider record, so a record
//! stays on the DHT nodes that hold it until it expires (hours), and clients that join the topic
//! meanwhile still find and dial a peer that left it. Hyperswarm's DHT unannounces; so do we:
//! `leave` asks the DHT nodes closest to the topic's key, over this request-response protocol,
//! to drop the record that names the asker.
//!
//! A node removes only the record of the peer that asks (the connection is authenticated), so
//! nobody can withdraw someone else's announce. Nodes that do not speak the protocol (other kad
//! implementations on the public DHT) keep the record until it expires.
//!
//! Wire format, one request and one answer per substream:
//! request `key_len u8 | key` (the topic's DHT key, at most [`MAX_KEY`] bytes); answer one
//! byte, `1` if a record was removed and `0` if the node held none.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// The longest DHT key a request may carry (ours are 34-byte sha2-256 multihashes).
pub const MAX_KEY: usize = 64;

/// The unannounce protocol of the network whose stream protocol is `stream_protocol`
/// (`/swarmplex/stream/1` → `/swarmplex/unannounce/1`).
pub fn protocol_for(stream_protocol: &str) -> StreamProtocol {
    let name = match stream_protocol.strip_suffix("/stream/1") {
        Some(prefix) => format!("{prefix}/unannounce/1"),
        None => format!("{stream_protocol}/unannounce"),
    };
    StreamProtocol::try_from_owned(name).unwrap_or(StreamProtocol::new("/swarmplex/unannounce/1"))
}

/// Reads and writes unannounce requests (a DHT key) and answers (whether a record was removed).
#[derive(Debug, Clone, Default)]
pub struct Codec;

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = bool;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 1];
        io.read_exact(&mut len).await?;
        let len = len[0] as usize;
        if len == 0 || len > MAX_KEY {
            return Err(invalid("unannounce: bad key length"));
        }
        let mut key = vec![0u8; len];
        io.read_exact(&mut key).await?;
        Ok(key)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<bool>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await?;
        match b[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("unannounce: bad answer")),
        }
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, key: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(invalid("unannounce: bad key length"));
        }
        io.write_all(&[key.len() as u8]).await?;
        io.write_all(&key).await?;
        io.close().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, removed: bool) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[removed as u8]).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec as _;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn a_request_and_an_answer_round_trip() {
        let p = protocol_for("/swarmplex/stream/1");
        assert_eq!(p.as_ref(), "/swarmplex/unannounce/1");
        assert_eq!(protocol_for("/swarmplex/my-net/stream/1").as_ref(), "/swarmplex/my-net/unannounce/1");
        let mut buf = Cursor::new(Vec::new());
        block(Codec.write_request(&p, &mut buf, vec![7; 34])).unwrap();
        assert_eq!(buf.get_ref().len(), 35);
        buf.set_position(0);
        assert_eq!(block(Codec.read_request(&p, &mut buf)).unwrap(), vec![7; 34]);
        for removed in [true, false] {
            let mut buf = Cursor::new(Vec::new());
            block(Codec.write_response(&p, &mut buf, removed)).unwrap();
            buf.set_position(0);
            assert_eq!(block(Codec.read_response(&p, &mut buf)).unwrap(), removed);
        }
    }

    #[test]
    fn bad_lengths_and_answers_are_errors() {
        let p = protocol_for("/swarmplex/stream/1");
        for bytes in [vec![0u8], vec![65u8], vec![3u8, 1]] {
            let mut buf = Cursor::new(bytes);
            assert!(block(Codec.read_request(&p, &mut buf)).is_err());
        }
        assert!(block(Codec.write_request(&p, &mut Cursor::new(Vec::new()), vec![0; 65])).is_err());
        assert!(block(Codec.read_response(&p, &mut Cursor::new(vec![2u8]))).is_err());
    }
}
