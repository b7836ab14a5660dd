'use strict'
const { EventEmitter } = require('events')

// What the swarm knows about a peer (Hyperswarm's PeerInfo). One per remote key, shared by
// every connection to it over time.
class PeerInfo extends EventEmitter {
  constructor (swarm, publicKey) {
    super()
    this._swarm = swarm
    this.publicKey = publicKey
    this.relayAddresses = []
    this.reconnecting = true
    this.proven = false
    this.banned = false
    this.tried = false
    this.explicit = false
    this.queued = false
    this.client = false
    this.topics = []
    this.attempts = 0
    this.priority = 2
    this._seenTopics = new Set()
  }

  get server () {
    return !this.client
  }

  get prioritized () {
    return this.priority >= 2
  }

  reconnect (val) {
    this.reconnecting = !!val
  }

  // Bans the peer: no reconnection, and the firewall refuses it from now on.
  // Differs from Hyperswarm by design: the engine also closes an open connection to it, and a
  // ban cannot be lifted (ban(false) only clears the flag here).
  ban (val = true) {
    this.banned = !!val
    if (this.banned && !this._swarm.destroyed) this._swarm._native.ban(this.publicKey)
  }

  _topic (topic) {
    const hex = topic.toString('hex')
    if (this._seenTopics.has(hex)) return
    this._seenTopics.add(hex)
    this.topics.push(topic)
    this.emit('topic', topic)
  }
}

module.exports = PeerInfo
