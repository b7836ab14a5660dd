'use strict'
const { optBool, checkObject } = require('./errors')
const { call, toError } = require('./native')

// A joined topic (Hyperswarm's PeerDiscovery). One per topic: joining the same topic again
// updates and returns the same object (Hyperswarm keeps one session per join call).
class PeerDiscovery {
  constructor (swarm, topic, { server, client }) {
    this.swarm = swarm
    this.topic = topic
    this.isServer = server
    this.isClient = client
    this.destroyed = false
    this.suspended = false
  }

  _apply () {
    if (this.isServer || this.isClient) call(() => this.swarm._native.join(this.topic, this.isServer, this.isClient))
    else call(() => this.swarm._native.leave(this.topic))
  }

  // Resolves when this topic's announce/lookup round is done and every peer it found was
  // connected (its 'connection' event already emitted) or given up.
  async flushed () {
    if (this.destroyed || this.swarm.destroyed) return
    if (!this.isServer && !this.isClient) return
    try {
      await this.swarm._native.flush(this.topic)
    } catch (err) {
      if (this.swarm.destroyed) return
      throw toError(err)
    }
  }

  async refresh (opts) {
    opts = checkObject(opts, 'refresh options')
    const server = optBool(opts, 'server', this.isServer)
    const client = optBool(opts, 'client', this.isClient)
    if (this.destroyed) return
    const wasJoined = this.isServer || this.isClient
    this.isServer = server
    this.isClient = client
    if (wasJoined && (server || client)) call(() => this.swarm._native.refresh(this.topic, server, client))
    else this._apply()
  }

  async destroy () {
    if (this.destroyed) return
    this.destroyed = true
    const hex = this.topic.toString('hex')
    if (this.swarm._discovery.get(hex) === this) this.swarm._discovery.delete(hex)
    if (!this.swarm.destroyed) call(() => this.swarm._native.leave(this.topic))
  }
}

module.exports = PeerDiscovery
