//! Topic peer exchange, the wire format. On a busy topic a DHT lookup returns only some members
//! (a DHT node keeps a bounded number of provider records per key), so members connected to each
//! other tell each other about the rest: one DHT hit leads to the whole topic.
//!
//! The asker opens a substream of kind [`Kind::Topics`](crate::wire::Kind::Topics) on its session
//! and names the topics it looks up, each by a per-session **tag**,
//! `sha256("swarmplex/topic-tag/v1" ‖ handshake hash ‖ topic)`: only a peer that knows the topic
//! can compute it, and a tag means nothing on another session; each tag says whether the asker
//! is also a server of the topic. The answerer matches the tags against the topics it joined,
//! answers for those only (the others stay secret), and remembers the asker as a member it may
//! name to others only if it is a server there (clients of a topic do not dial other clients,
//! as in Hyperswarm, where only servers announce).
//!
//! Request: `n u8 | n × (tag[32] | server u8)` (n ≤ [`MAX_TOPICS`]).
//! Answer: `m u8 | m × (index u8 | key[32] | addrs)` (m ≤ [`MAX_MEMBERS`]; `index` is the
//! tag's place in the request; `addrs` as in [`crate::exchange`], at most [`MAX_ADDRS`]).

use std::io;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::Multiaddr;
use sha2::{Digest, Sha256};

use crate::exchange::{encode_addrs, read_addrs, read_count};
use crate::keys::PublicKey;
use crate::topic::Topic;

/// Most topics one request may name.
pub const MAX_TOPICS: usize = 32;
/// Most members one answer may carry, over all topics.
pub const MAX_MEMBERS: usize = 64;
/// Most addresses given for one member.
pub const MAX_ADDRS: usize = 4;

/// A topic's tag on the session whose handshake hash is `handshake_hash`.
pub fn tag(handshake_hash: &[u8; 32], topic: &Topic) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"swarmplex/topic-tag/v1");
    h.update(handshake_hash);
    h.update(topic.0);
    h.finalize().into()
}

/// A topic named in a request: its tag, and whether the asker is a server of it.
pub type Named = ([u8; 32], bool);

/// Encodes a request naming `topics` (at most [`MAX_TOPICS`]).
pub fn encode_request(topics: &[Named]) -> Vec<u8> {
    let topics = &topics[..topics.len().min(MAX_TOPICS)];
    let mut out = vec![topics.len() as u8];
    for (tag, server) in topics {
        out.extend_from_slice(tag);
        out.push(*server as u8);
    }
    out
}

/// Reads a request's named topics.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<Named>> {
    let n = read_count(r, MAX_TOPICS, "topics named").await?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let mut t = [0u8; 33];
        r.read_exact(&mut t).await?;
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&t[..32]);
        topics.push((tag, t[32] != 0));
    }
    Ok(topics)
}

/// One member in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Which of the request's tags (its topic) this member joined.
    pub index: u8,
    pub key: PublicKey,
    /// Where the answerer knows it listens (may be unreachable from the asker).
    pub addrs: Vec<Multiaddr>,
}

/// Encodes an answer (at most [`MAX_MEMBERS`] members, [`MAX_ADDRS`] addresses each).
pub fn encode_answer(members: &[Member]) -> Vec<u8> {
    let members = &members[..members.len().min(MAX_MEMBERS)];
    let mut out = vec![members.len() as u8];
    for m in members {
        out.push(m.index);
        out.extend_from_slice(m.key.as_bytes());
        encode_addrs(&mut out, &m.addrs, MAX_ADDRS);
    }
    out
}

/// Reads an answer to a request that named `asked` tags.
pub async fn read_answer<R: AsyncRead + Unpin>(r: &mut R, asked: usize) -> io::Result<Vec<Member>> {
    let n = read_count(r, MAX_MEMBERS, "members offered").await?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let mut head = [0u8; 33];
        r.read_exact(&mut head).await?;
        if head[0] as usize >= asked {
            return Err(invalid(format!("member for topic {} of {asked}", head[0])));
        }
        let key = PublicKey::from_slice(&head[1..]).map_err(|e| invalid(e.to_string()))?;
        let addrs = read_addrs(r, MAX_ADDRS).await?;
        members.push(Member { index: head[0], key, addrs });
    }
    Ok(members)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;
    use futures::executor::block_on;

    #[test]
    fn tags_depend_on_the_topic_and_the_session() {
        let (a, b) = (Topic::from_name("a"), Topic::from_name("b"));
        assert_ne!(tag(&[1; 32], &a), tag(&[1; 32], &b));
        assert_ne!(tag(&[1; 32], &a), tag(&[2; 32], &a));
        assert_eq!(tag(&[1; 32], &a), tag(&[1; 32], &a));
    }

    #[test]
    fn requests_and_answers_round_trip_and_bad_ones_fail() {
        let tags = vec![([7u8; 32], true), ([8u8; 32], false)];
        assert_eq!(block_on(read_request(&mut &encode_request(&tags)[..])).unwrap(), tags);
        let key = KeyPair::from_seed(&[3; 32]).unwrap().public_key();
        let addr: Multiaddr = "/ip4/127.0.0.1/udp/4000/quic-v1".parse().unwrap();
        let members = vec![Member { index: 1, key, addrs: vec![addr] }];
        let bytes = encode_answer(&members);
        assert_eq!(block_on(read_answer(&mut &bytes[..], 2)).unwrap(), members);
        // A member for a topic that was not asked about, too many tags or members: errors.
        assert!(block_on(read_answer(&mut &bytes[..], 1)).is_err());
        assert!(block_on(read_request(&mut &[MAX_TOPICS as u8 + 1][..])).is_err());
        assert!(block_on(read_answer(&mut &[MAX_MEMBERS as u8 + 1][..], 1)).is_err());
        assert!(block_on(read_answer(&mut &bytes[..bytes.len() - 1], 2)).is_err(), "truncated");
    }
}
