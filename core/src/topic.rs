//! Topics: 32-byte keys, and the DHT key each one is announced under.

use crate::error::Result;
use crate::keys::to_array;
use libp2p::kad::RecordKey;
use sha2::{Digest, Sha256};

/// A 32-byte topic key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(pub [u8; 32]);

impl Topic {
    /// Parses 32 bytes; any other length is `InvalidInput`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Topic(to_array(bytes, "topic")?))
    }

    /// A topic derived from a human-readable name: `sha256(name)`.
    pub fn from_name(name: &str) -> Self {
        Topic(Sha256::digest(name.as_bytes()).into())
    }

    /// The key of a peer's self-announce (`listen()`): `sha256("swarmplex/self/v1" ‖ public key)`.
    pub fn for_public_key(key: &crate::PublicKey) -> Self {
        let mut h = Sha256::new();
        h.update(b"swarmplex/self/v1");
        h.update(key.0);
        Topic(h.finalize().into())
    }

    /// The DHT key: a sha2-256 multihash of `sha256("swarmplex/topic/v1" ‖ topic)`.
    pub fn dht_key(&self) -> RecordKey {
        let mut h = Sha256::new();
        h.update(b"swarmplex/topic/v1");
        h.update(self.0);
        let digest: [u8; 32] = h.finalize().into();
        let mut mh = Vec::with_capacity(34);
        mh.extend_from_slice(&[0x12, 0x20]);
        mh.extend_from_slice(&digest);
        RecordKey::new(&mh)
    }

    /// The topic as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Topic({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dht_key_is_a_sha256_multihash() {
        let k = Topic([0u8; 32]).dht_key();
        let bytes = k.as_ref();
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[..2], &[0x12, 0x20]);
        assert_ne!(Topic([1u8; 32]).dht_key(), k);
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert!(Topic::from_slice(&[0u8; 31]).is_err());
        assert!(Topic::from_slice(&[0u8; 32]).is_ok());
    }
}
