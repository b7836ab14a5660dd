//! Multiaddr rules: relay circuit addresses, `/p2p/<peer>` suffixes.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// The relay's peer id in a `…/p2p/<relay>/p2p-circuit/…` address.
pub(crate) fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => last = Some(id),
            Protocol::P2pCircuit => return last,
            _ => {}
        }
    }
    None
}

pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The relay address `<addr>/p2p/<relay>/p2p-circuit` of `relay`, reached at `addr`.
pub(crate) fn circuit_via(addr: Multiaddr, relay: PeerId) -> Multiaddr {
    strip_p2p(addr).with(Protocol::P2p(relay)).with(Protocol::P2pCircuit)
}

/// `addr` without a trailing `/p2p/<peer>`.
pub(crate) fn strip_p2p(mut addr: Multiaddr) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// Ensures `addr` ends with `/p2p/<peer>` (for printing bootstrap lists).
pub(crate) fn with_p2p(mut addr: Multiaddr, peer: PeerId) -> Multiaddr {
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.push(Protocol::P2p(peer));
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_addresses_name_their_relay() {
        let relay = PeerId::random();
        let target = PeerId::random();
        let base: Multiaddr = "/ip4/10.0.0.1/udp/4001/quic-v1".parse().expect("addr");
        let circuit = circuit_via(with_p2p(base.clone(), relay), relay).with(Protocol::P2p(target));
        assert_eq!(circuit.to_string(), format!("{base}/p2p/{relay}/p2p-circuit/p2p/{target}"));
        assert!(is_relayed(&circuit) && !is_relayed(&base));
        assert_eq!(relay_of(&circuit), Some(relay));
        assert_eq!(relay_of(&with_p2p(base.clone(), relay)), None);
        assert_eq!(strip_p2p(with_p2p(base.clone(), relay)), base);
        assert_eq!(with_p2p(with_p2p(base.clone(), relay), relay), with_p2p(base, relay), "added once");
    }
}
