//! Identity: Ed25519 key pairs in libsodium's layout, and their mapping to libp2p peer ids.

use crate::error::{Error, Result};
use libp2p::identity::{self, ed25519};
use libp2p::PeerId;

/// A 32-byte Ed25519 public key: a peer's identity everywhere in swarmplex.
/// Build it with [`PublicKey::from_slice`] (which validates it) or from a [`KeyPair`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub(crate) [u8; 32]);

impl PublicKey {
    /// Parses 32 bytes that encode an Ed25519 point; anything else is `InvalidInput`
    /// (about half of all 32-byte strings are not valid keys).
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr = to_array(bytes, "public key")?;
        ed25519::PublicKey::try_from_bytes(&arr)
            .map_err(|_| Error::InvalidInput("public key is not a valid Ed25519 point".into()))?;
        Ok(PublicKey(arr))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s).map_err(|e| Error::InvalidInput(format!("public key hex: {e}")))?;
        Self::from_slice(&bytes)
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The libp2p peer id this key maps to (1:1).
    pub fn to_peer_id(&self) -> PeerId {
        let pk = ed25519::PublicKey::try_from_bytes(&self.0)
            .map(identity::PublicKey::from)
            .expect("validated at construction");
        pk.to_peer_id()
    }

    /// The public key inside a peer id, if it is an Ed25519 one (every swarmplex peer's is).
    pub fn from_peer_id(peer: &PeerId) -> Option<Self> {
        let mh = peer.as_ref();
        // Identity multihash of the protobuf-encoded public key.
        if mh.code() != 0 {
            return None;
        }
        let pk = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
        let ed = pk.try_into_ed25519().ok()?;
        Some(PublicKey(ed.to_bytes()))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..12])
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An Ed25519 key pair. `secret_key()` is 64 bytes: seed ‖ public key, libsodium's layout.
#[derive(Clone)]
pub struct KeyPair {
    inner: ed25519::Keypair,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        KeyPair { inner: ed25519::Keypair::generate() }
    }

    /// The key pair libsodium's `crypto_sign_seed_keypair` derives from this 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self> {
        let mut seed = to_array::<32>(seed, "seed")?;
        let secret = ed25519::SecretKey::try_from_bytes(&mut seed)
            .map_err(|e| Error::InvalidInput(format!("seed: {e}")))?;
        Ok(KeyPair { inner: ed25519::Keypair::from(secret) })
    }

    /// Parses a 64-byte libsodium secret key (seed ‖ public key); the halves must match.
    pub fn from_secret_key(secret: &[u8]) -> Result<Self> {
        let mut bytes = to_array::<64>(secret, "secret key")?;
        let inner = ed25519::Keypair::try_from_bytes(&mut bytes)
            .map_err(|e| Error::InvalidInput(format!("secret key: {e}")))?;
        Ok(KeyPair { inner })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.inner.public().to_bytes())
    }

    /// The 64-byte secret key, seed ‖ public key.
    pub fn secret_key(&self) -> [u8; 64] {
        self.inner.to_bytes()
    }

    /// The libp2p identity for this key pair.
    pub(crate) fn to_libp2p(&self) -> identity::Keypair {
        identity::Keypair::from(self.inner.clone())
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

/// Copies a slice into an array, or says which value had the wrong length.
pub(crate) fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| Error::InvalidInput(format!("{what} must be {N} bytes, got {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsodium_seed_vector() {
        let kp = KeyPair::from_seed(&[4u8; 32]).unwrap();
        assert_eq!(
            kp.public_key().to_hex(),
            "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"
        );
        let sk = kp.secret_key();
        assert_eq!(&sk[..32], &[4u8; 32]);
        assert_eq!(&sk[32..], &kp.public_key().0);
        assert_eq!(KeyPair::from_secret_key(&sk).unwrap().public_key(), kp.public_key());
    }

    #[test]
    fn peer_id_round_trip() {
        let kp = KeyPair::generate();
        let pid = kp.public_key().to_peer_id();
        assert_eq!(pid, kp.to_libp2p().public().to_peer_id());
        assert_eq!(PublicKey::from_peer_id(&pid), Some(kp.public_key()));
    }

    #[test]
    fn keys_that_are_not_ed25519_points_are_invalid_input() {
        // Roughly half of all 32-byte strings do not decode to a curve point; those must be
        // rejected up front (they used to panic later, inside the event loop, in to_peer_id).
        let mut rejected = 0;
        for i in 0..64u8 {
            let bytes = [i; 32];
            match PublicKey::from_slice(&bytes) {
                Ok(k) => {
                    let _ = k.to_peer_id(); // must not panic for an accepted key
                }
                Err(e) => {
                    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
                    rejected += 1;
                }
            }
        }
        assert!(rejected > 0, "expected some of the 64 patterns to be invalid points");
    }

    #[test]
    fn bad_lengths_are_invalid_input() {
        assert_eq!(KeyPair::from_seed(&[0; 31]).unwrap_err().kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(PublicKey::from_slice(&[0; 33]).unwrap_err().kind(), crate::ErrorKind::InvalidInput);
        assert!(PublicKey::from_hex("zz").is_err());
    }
}
