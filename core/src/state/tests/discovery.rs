//! Discovery rules on the in-memory net: finding peers by key before they announce, and topic
//! peer exchange (members heard, who counts as a member).

use super::*;

#[test]
fn a_peer_joined_by_key_before_it_announced_is_found_by_lookup_without_a_backoff_step() {
    let mut net = Net::new(2);
    net.hidden.insert(1);
    let k1 = net.nodes[1].key;
    // No address for 1 yet: the dial cannot start, and that is no failure.
    net.nodes[0].state.join_peer(k1, net.now);
    net.advance(secs(2));
    assert!(net.nodes[0].state.session(&net.pid(1)).is_none());
    // 1 announces itself (`Swarm::listen`); 0's relookup at 3 s finds and dials it.
    net.nodes[1].state.join(Topic::for_public_key(&k1), JoinOptions { server: true, client: false }, net.now);
    net.advance(secs(2));
    net.assert_paired(0, 1);
    // 1 drops the session: 0 reconnects after the first backoff step (≈ 1 s), not a later one.
    let conn = net.sessions(1)[0].conn;
    net.nodes[1].state.close_session(conn, net.now);
    net.advance(Duration::from_millis(1300));
    net.assert_paired(0, 1);
}

#[test]
fn members_heard_are_dialed_as_lookup_results_and_members_are_only_peers_on_the_topic() {
    let mut net = Net::new(4);
    let other = Topic::from_name("other");
    // 0 and 1 meet on the topic; 2 meets 0 on another topic; 3 is on the topic but nobody
    // found it (as a member a capped lookup did not return).
    net.nodes[1].state.join(topic(), JoinOptions { server: true, client: false }, net.now);
    net.nodes[2].state.join(other, JoinOptions { server: true, client: false }, net.now);
    net.nodes[3].state.join(topic(), TOPIC_OPTS, net.now);
    net.run();
    net.dht.get_mut(&topic()).map(|p| p.remove(&3));
    net.nodes[0].state.join(topic(), JoinOptions { server: false, client: true }, net.now);
    net.nodes[0].state.join(other, JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(1));
    net.assert_paired(0, 1);
    net.assert_paired(0, 2);
    assert!(net.nodes[0].state.session(&net.pid(3)).is_none());
    // Members of the topic that 0 knows, for asker 1: none but 1 itself (excluded); 2 is not
    // a member. Once 2 proves the topic, it is one.
    let (p1, p2, p3) = (net.pid(1), net.pid(2), net.pid(3));
    assert!(net.nodes[0].state.topic_members(&topic(), &p1, 64).is_empty());
    net.nodes[0].state.member_proved(p2, &[topic()]);
    let members: Vec<PeerId> = net.nodes[0].state.topic_members(&topic(), &p1, 64).into_iter().map(|(p, _)| p).collect();
    assert_eq!(members, vec![p2]);
    // 1 is a server only: members it hears of are not dialed. 0 is a client: they are.
    let p0 = net.pid(0);
    net.nodes[1].state.members_heard(topic(), vec![p0]);
    net.run();
    assert!(net.dials_to(1, 0).is_empty(), "a server-only member dialed a member it heard of");
    net.nodes[0].state.members_heard(topic(), vec![p3]);
    net.run();
    net.assert_paired(0, 3);
}
