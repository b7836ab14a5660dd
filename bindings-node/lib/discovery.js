'use strict'
const { optBool, checkObject } = require('./errors')
const { call, toError } = require('./native')

// A joined topic (Hyperswarm's PeerDiscovery): one per topic, what `status()` and `topics()`
// return. Every `join()` adds a session (PeerDiscoverySession); the topic is announced while
// any session is a server and looked up while any is a client, and left when the last session
// is destroyed — Hyperswarm's rules, so destroying one session does not stop another's.
class PeerDiscovery {
  constructor (swarm, topic) {
    this.swarm = swarm
    this.topic = topic
    this.isServer = false
    this.isClient = false
    this.destroyed = false
    this.suspended = false
    this._sessions = []
  }

  session ({ server, client }) {
    if (this.destroyed) throw new Error('PeerDiscovery is destroyed')
    const s = new PeerDiscoverySession(this, server, client)
    this._sessions.push(s)
    this._apply(true)
    return s
  }

  // Joins with the union of the sessions' roles. `round`: start a new round even when the roles
  // did not change (a new session, a refresh); otherwise only a change of roles does.
  _apply (round) {
    const server = this._sessions.some((s) => s.isServer)
    const client = this._sessions.some((s) => s.isClient)
    const changed = server !== this.isServer || client !== this.isClient
    this.isServer = server
    this.isClient = client
    if (!server && !client) return // sessions with neither role (Hyperswarm allows them) join nothing
    if (changed) call(() => this.swarm._native.join(this.topic, server, client))
    else if (round) call(() => this.swarm._native.refresh(this.topic, server, client))
  }

  // Resolves when this topic's announce/lookup round is done and every peer it found was
  // connected (its 'connection' event already emitted) or given up.
  async flushed () {
    if (this.destroyed || this.swarm.destroyed) return
    try {
      await this.swarm._native.flush(this.topic)
    } catch (err) {
      if (this.swarm.destroyed) return
      throw toError(err)
    }
  }

  // Starts a new round now with the sessions' roles.
  async refresh () {
    if (this.destroyed) throw new Error('PeerDiscovery is destroyed')
    await this._update(true)
  }

  // After a session changed or left: when no session is a server any more, the announce is
  // withdrawn (the promise waits for it) before the topic is joined as a client only.
  async _update (round) {
    const server = this._sessions.some((s) => s.isServer)
    if (!this.isServer || server) return this._apply(round)
    this.isServer = false
    await this._leave()
    if (this.destroyed || this.swarm.destroyed) return
    this.isClient = this._sessions.some((s) => s.isClient)
    if (this.isClient) call(() => this.swarm._native.join(this.topic, false, true))
  }

  async _leave () {
    try {
      await call(() => this.swarm._native.leave(this.topic))
    } catch (err) {
      if (!this.swarm.destroyed) throw toError(err)
    }
  }

  // Leaves the topic (every session); resolves once the announce is withdrawn from the DHT.
  // Existing connections stay.
  async destroy () {
    if (this.destroyed) return
    this.destroyed = true
    for (const s of this._sessions) s.destroyed = true
    this._sessions = []
    const hex = this.topic.toString('hex')
    if (this.swarm._discovery.get(hex) === this) this.swarm._discovery.delete(hex)
    if (!this.swarm.destroyed) await this._leave()
  }

  async _sessionDestroyed (session) {
    this._sessions = this._sessions.filter((s) => s !== session)
    if (this._sessions.length === 0) return this.destroy()
    return this._update(false)
  }
}

// What `join()` returns (Hyperswarm's PeerDiscoverySession): one caller's interest in a topic.
class PeerDiscoverySession {
  constructor (discovery, server, client) {
    this.discovery = discovery
    this.isServer = server
    this.isClient = client
    this.destroyed = false
  }

  get swarm () { return this.discovery.swarm }
  get topic () { return this.discovery.topic }

  async flushed () {
    return this.discovery.flushed()
  }

  // Starts a new round now, switching this session's roles if given.
  async refresh (opts) {
    opts = checkObject(opts, 'refresh options')
    const server = optBool(opts, 'server', this.isServer)
    const client = optBool(opts, 'client', this.isClient)
    if (this.destroyed) throw new Error('PeerDiscovery is destroyed')
    if (!server && !client) throw new Error('Cannot refresh with neither client nor server option')
    this.isServer = server
    this.isClient = client
    return this.discovery._update(true)
  }

  // Ends this session; the topic is left once no session remains.
  async destroy () {
    if (this.destroyed) return
    this.destroyed = true
    return this.discovery._sessionDestroyed(this)
  }
}

module.exports = { PeerDiscovery, PeerDiscoverySession }
