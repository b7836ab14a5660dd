//! Peer exchange (the `peer-exchange` API): ask a connected peer for another peer of the same
//! network, then connect to it through the asked peer's relay.
//!
//! The asker opens a substream of kind [`Kind::Exchange`](crate::wire::Kind::Exchange) on its
//! session and writes a [`Request`]; the asked peer answers with an [`Answer`] and closes. The
//! asked peer prefers peers that hold a relay reservation with it (so the asker can reach them
//! through it even behind NAT) and never offers the asker or a peer in its exclude list.
//! This module is the codec and the choice, sans I/O; the event loop does the rest.

use std::collections::HashSet;
use std::io;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::Multiaddr;

use crate::keys::PublicKey;

/// Most keys a request may exclude, and most addresses an answer may carry.
pub const MAX_EXCLUDE: usize = 255;
/// Most addresses offered for one peer.
pub const MAX_ADDRS: usize = 8;

/// "Give me a peer that is none of these": `count u8 | count × key[32]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The asker and the peers it is already connected to.
    pub exclude: Vec<PublicKey>,
}

/// A peer the asked node offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Its public key.
    pub key: PublicKey,
    /// It holds a relay reservation with the asked peer: dial it through that peer.
    pub relayed: bool,
    /// Addresses it listens on, as the asked peer learned them (may be unreachable from us).
    pub addrs: Vec<Multiaddr>,
}

/// The answer: `0` (no peer to offer) or `1 | key[32] | relayed u8 | n u8 | n × (len u16 BE | addr)`.
pub type Answer = Option<Offer>;

/// A peer the asked node could offer.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its key.
    pub key: PublicKey,
    /// Whether it holds a relay reservation with us.
    pub reserved: bool,
    /// Where it listens.
    pub addrs: Vec<Multiaddr>,
}

/// Picks the peer to offer: a random one among those not excluded, preferring peers that hold a
/// reservation with us. `unit` is a random number in `[0, 1)`.
pub fn choose(candidates: &[Candidate], exclude: &HashSet<PublicKey>, unit: f64) -> Answer {
    let open: Vec<&Candidate> = candidates.iter().filter(|c| !exclude.contains(&c.key)).collect();
    let reserved: Vec<&Candidate> = open.iter().copied().filter(|c| c.reserved).collect();
    let pool = if reserved.is_empty() { open } else { reserved };
    if pool.is_empty() {
        return None;
    }
    let c = pool[((unit * pool.len() as f64) as usize).min(pool.len() - 1)];
    Some(Offer { key: c.key, relayed: c.reserved, addrs: c.addrs.iter().take(MAX_ADDRS).cloned().collect() })
}

impl Request {
    /// The request's bytes (at most [`MAX_EXCLUDE`] keys are kept).
    pub fn encode(&self) -> Vec<u8> {
        let keys = &self.exclude[..self.exclude.len().min(MAX_EXCLUDE)];
        let mut out = vec![keys.len() as u8];
        for k in keys {
            out.extend_from_slice(k.as_bytes());
        }
        out
    }

    /// Reads a request.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Self> {
        let mut n = [0u8; 1];
        r.read_exact(&mut n).await?;
        let mut exclude = Vec::with_capacity(n[0] as usize);
        for _ in 0..n[0] {
            let mut k = [0u8; 32];
            r.read_exact(&mut k).await?;
            exclude.push(PublicKey::from_slice(&k).map_err(|e| invalid(e.to_string()))?);
        }
        Ok(Request { exclude })
    }
}

/// An answer's bytes.
pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    let Some(offer) = answer else { return vec![0] };
    let mut out = vec![1];
    out.extend_from_slice(offer.key.as_bytes());
    out.push(offer.relayed as u8);
    encode_addrs(&mut out, &offer.addrs, MAX_ADDRS);
    out
}

/// Appends at most `max` addresses: `n u8 | n × (len u16 BE | addr)`.
pub(crate) fn encode_addrs(out: &mut Vec<u8>, addrs: &[Multiaddr], max: usize) {
    let addrs = &addrs[..addrs.len().min(max)];
    out.push(addrs.len() as u8);
    for a in addrs {
        let bytes = a.to_vec();
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
}

/// Reads a `u8` count; more than `max` is an error that says `n {what}`.
pub(crate) async fn read_count<R: AsyncRead + Unpin>(r: &mut R, max: usize, what: &str) -> io::Result<usize> {
    let mut n = [0u8; 1];
    r.read_exact(&mut n).await?;
    if n[0] as usize > max {
        return Err(invalid(format!("{} {what}", n[0])));
    }
    Ok(n[0] as usize)
}

/// Reads what [`encode_addrs`] wrote; more than `max` addresses is an error.
pub(crate) async fn read_addrs<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Vec<Multiaddr>> {
    let n = read_count(r, max, "addresses offered").await?;
    let mut addrs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut len = [0u8; 2];
        r.read_exact(&mut len).await?;
        let mut bytes = vec![0u8; u16::from_be_bytes(len) as usize];
        r.read_exact(&mut bytes).await?;
        addrs.push(Multiaddr::try_from(bytes).map_err(|e| invalid(e.to_string()))?);
    }
    Ok(addrs)
}

/// The multiaddr for `transport` (`"tcp"`, `"quic"` or `"websocket"`) at `host` (an IPv4/IPv6 address or a DNS
/// name) and `port`, as the peer-exchange API's `accept`/`connect` take them.
pub fn transport_addr(transport: &str, host: &str, port: u16) -> crate::Result<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let mut addr = Multiaddr::empty();
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => addr.push(Protocol::Ip4(ip)),
        Ok(std::net::IpAddr::V6(ip)) => addr.push(Protocol::Ip6(ip)),
        // A DNS name; all digits and dots is a malformed IPv4 address (no top-level domain is numeric).
        Err(_)
            if host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !host.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            addr.push(Protocol::Dns(host.to_string().into()))
        }
        Err(_) => return Err(crate::Error::InvalidInput(format!("host {host:?} is not an IP address or DNS name"))),
    }
    match transport {
        "tcp" => addr.push(Protocol::Tcp(port)),
        "quic" => {
            addr.push(Protocol::Udp(port));
            addr.push(Protocol::QuicV1);
        }
        "websocket" => {
            addr.push(Protocol::Tcp(port));
            addr.push(Protocol::Ws("/".into()));
        }
        t => {
            return Err(crate::Error::InvalidInput(format!(
                "unsupported transport {t:?}: use \"tcp\", \"quic\" or \"websocket\""
            )));
        }
    }
    Ok(addr)
}

/// Reads an answer.
pub async fn read_answer<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Answer> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag).await?;
    match tag[0] {
        0 => return Ok(None),
        1 => {}
        t => return Err(invalid(format!("unknown answer tag {t}"))),
    }
    let mut k = [0u8; 32];
    r.read_exact(&mut k).await?;
    let key = PublicKey::from_slice(&k).map_err(|e| invalid(e.to_string()))?;
    let mut relayed = [0u8; 1];
    r.read_exact(&mut relayed).await?;
    let addrs = read_addrs(r, MAX_ADDRS).await?;
    Ok(Some(Offer { key, relayed: relayed[0] != 0, addrs }))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;
    use futures::executor::block_on;

    fn key(i: u8) -> PublicKey {
        KeyPair::from_seed(&[i; 32]).unwrap().public_key()
    }

    #[test]
    fn codecs_round_trip() {
        let req = Request { exclude: vec![key(1), key(2)] };
        assert_eq!(block_on(Request::read(&mut req.encode().as_slice())).unwrap(), req);
        let offer = Some(Offer {
            key: key(3),
            relayed: true,
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap(), "/ip4/10.0.0.1/udp/9/quic-v1".parse().unwrap()],
        });
        assert_eq!(block_on(read_answer(&mut encode_answer(&offer).as_slice())).unwrap(), offer);
        assert_eq!(block_on(read_answer(&mut encode_answer(&None).as_slice())).unwrap(), None);
        // Truncated, unknown tag, a key that is not a curve point: errors, not panics.
        let bytes = encode_answer(&offer);
        assert!(block_on(read_answer(&mut &bytes[..20])).is_err());
        assert!(block_on(read_answer(&mut [7u8].as_slice())).is_err());
        let not_a_point = (0..=255u8).find(|i| PublicKey::from_slice(&[*i; 32]).is_err()).unwrap();
        let mut bad = vec![1u8];
        bad.extend_from_slice(&[not_a_point; 32]);
        assert!(block_on(Request::read(&mut bad.as_slice())).is_err());
    }

    #[test]
    fn transport_addresses() {
        assert_eq!(transport_addr("tcp", "10.0.0.2", 8000).unwrap().to_string(), "/ip4/10.0.0.2/tcp/8000");
        assert_eq!(transport_addr("quic", "::1", 9).unwrap().to_string(), "/ip6/::1/udp/9/quic-v1");
        assert_eq!(transport_addr("tcp", "example.org", 1).unwrap().to_string(), "/dns/example.org/tcp/1");
        assert_eq!(transport_addr("websocket", "10.0.0.1", 8000).unwrap().to_string(), "/ip4/10.0.0.1/tcp/8000/ws");
        for (t, h) in [("webrtc", "10.0.0.1"), ("tcp", "not a host!"), ("tcp", ""), ("tcp", "999.0.0.1"), ("tcp", "zz:1")] {
            assert_eq!(transport_addr(t, h, 1).unwrap_err().kind(), crate::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn choice_prefers_reserved_and_honours_exclusions() {
        let c = |i, reserved| Candidate { key: key(i), reserved, addrs: vec![] };
        let all = vec![c(1, false), c(2, true), c(3, false), c(4, true)];
        let none: HashSet<PublicKey> = HashSet::new();
        for unit in [0.0, 0.3, 0.6, 0.999] {
            let o = choose(&all, &none, unit).unwrap();
            assert!(o.relayed && (o.key == key(2) || o.key == key(4)));
        }
        let ex: HashSet<PublicKey> = [key(2), key(4)].into();
        let o = choose(&all, &ex, 0.7).unwrap();
        assert!(!o.relayed && (o.key == key(1) || o.key == key(3)));
        let ex: HashSet<PublicKey> = [key(1), key(2), key(3), key(4)].into();
        assert_eq!(choose(&all, &ex, 0.5), None);
        assert_eq!(choose(&[], &none, 0.5), None);
    }
}
