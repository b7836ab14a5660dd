'use strict'
// swarmplex/peersockets: peersockets' API on a swarmplex Swarm.
//   const Peersockets = require('swarmplex/peersockets')
//   const sockets = new Peersockets(swarm)       // swarm: a swarmplex Swarm (not a networker)
//
// Messages are the engine's topic messages: each one rides the peer's authenticated, encrypted
// connection (so, unlike the original, they are MAC'd), and the remote delivers it only if it
// joined that topic; otherwise it drops it silently (the sender cannot tell). Topic names are
// namespaced ("peersockets/" + name) so they never collide with other users of the swarm.
// broadcast(msg) sends to every connected peer, because a sender cannot know who joined: only
// the peers that joined the topic deliver it.
// onmessage(remoteKey, msg): remoteKey is the sender's 32-byte public key, msg a Buffer.
const { EventEmitter } = require('events')
const { isBytes, toBuffer, key32, describe, checkObject } = require('./errors')
const { binding } = require('./native')

const PREFIX = 'peersockets/'
const MAX_TOPIC = binding.MAX_NAME - PREFIX.length

function toMessage (msg) {
  if (typeof msg === 'string') return Buffer.from(msg)
  if (isBytes(msg)) return toBuffer(msg)
  throw new TypeError(`message must be a string or a Buffer, got ${describe(msg)}`)
}

class TopicHandle {
  constructor (sockets, topicName, opts) {
    this.sockets = sockets
    this.topicName = topicName
    this.closed = false
    this._onmessage = opts.onmessage || null
    this._onclose = opts.onclose || null
  }

  // Sends `msg` to the connected peer `remoteKey`; resolves once sent (delivered only if the
  // remote joined this topic). Rejects if there is no open connection to that peer.
  send (remoteKey, msg) {
    if (this.closed) return Promise.reject(new Error('topic handle closed'))
    return this.sockets.swarm.sendMessage(key32(remoteKey, 'remote key'), PREFIX + this.topicName, toMessage(msg))
  }

  // Sends `msg` to every connected peer; resolves with how many sends succeeded.
  async broadcast (msg) {
    if (this.closed) throw new Error('topic handle closed')
    const data = toMessage(msg)
    const keys = [...this.sockets.swarm.connections].map((s) => s.remotePublicKey)
    const results = await Promise.allSettled(keys.map((k) => this.sockets.swarm.sendMessage(k, PREFIX + this.topicName, data)))
    return results.filter((r) => r.status === 'fulfilled').length
  }

  // Stops delivering to this handle (the topic stays joined while other handles use it).
  close () {
    if (this.closed) return
    this.closed = true
    this.sockets._remove(this)
  }

  _deliver (remoteKey, data) {
    if (!this.closed && this._onmessage) this._onmessage(remoteKey, data)
  }
}

class Peersockets extends EventEmitter {
  constructor (swarm) {
    super()
    if (!swarm || typeof swarm.joinMessages !== 'function' || typeof swarm.sendMessage !== 'function') {
      throw new TypeError('Peersockets needs a swarmplex Swarm')
    }
    this.swarm = swarm
    this.topics = new Map() // topicName -> Set<TopicHandle>
    this._onmessage = (remote, topic, data) => {
      if (!topic.startsWith(PREFIX)) return
      const handles = this.topics.get(topic.slice(PREFIX.length))
      if (!handles) return
      for (const h of [...handles]) {
        try {
          h._deliver(remote, data)
        } catch (err) {
          process.nextTick(() => { throw err }) // an app callback's error is the app's
        }
      }
    }
    swarm.on('message', this._onmessage)
  }

  join (topicName, opts = {}) {
    if (typeof topicName !== 'string' || topicName.length === 0) throw new TypeError(`topicName must be a non-empty string, got ${describe(topicName)}`)
    if (Buffer.byteLength(topicName) > MAX_TOPIC) throw new TypeError(`topicName longer than ${MAX_TOPIC} bytes`)
    opts = checkObject(opts, 'join options')
    for (const k of ['onmessage', 'onclose']) {
      if (opts[k] !== undefined && typeof opts[k] !== 'function') throw new TypeError(`${k} must be a function, got ${describe(opts[k])}`)
    }
    let handles = this.topics.get(topicName)
    if (!handles) {
      this.swarm.joinMessages(PREFIX + topicName)
      this.topics.set(topicName, (handles = new Set()))
    }
    const handle = new TopicHandle(this, topicName, opts)
    handles.add(handle)
    return handle
  }

  // Closes every handle of `topicName` (all topics if omitted), calls their onclose, and stops
  // receiving that topic.
  leave (topicName) {
    const names = topicName === undefined ? [...this.topics.keys()] : [topicName]
    for (const name of names) {
      const handles = this.topics.get(name)
      if (!handles) continue
      this.topics.delete(name)
      if (!this.swarm.destroyed) this.swarm.leaveMessages(PREFIX + name)
      for (const h of handles) {
        h.closed = true
        if (h._onclose) h._onclose()
      }
    }
  }

  _remove (handle) {
    const handles = this.topics.get(handle.topicName)
    if (handles) handles.delete(handle)
  }
}

module.exports = Peersockets
module.exports.Peersockets = Peersockets
module.exports.TopicHandle = TopicHandle
