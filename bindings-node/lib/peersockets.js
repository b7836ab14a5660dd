'use strict'
// swarmplex/peersockets: peersockets' API on a swarmplex Swarm.
//   const Peersockets = require('swarmplex/peersockets')
//   const sockets = new Peersockets(swarm)       // swarm: a swarmplex Swarm (not a networker)
//
// The behaviour is the core's (`swarmplex::peersockets`); this file translates it. Messages are
// the engine's topic messages: each one rides the peer's authenticated, encrypted connection
// (so, unlike the original, they are MAC'd), and the remote delivers it only if it joined that
// topic; otherwise it drops it silently (the sender cannot tell). Topic names are namespaced
// ("peersockets/" + name) so they never collide with other users of the swarm.
// broadcast(msg) sends to every connected peer, because a sender cannot know who joined: only
// the peers that joined the topic deliver it.
// onmessage(remoteKey, msg): remoteKey is the sender's 32-byte public key, msg a Buffer.
const { EventEmitter } = require('events')
const { isBytes, toBuffer, key32, describe, checkObject } = require('./errors')
const { binding, toError, call } = require('./native')

const PREFIX = 'peersockets/'
const MAX_TOPIC = binding.MAX_NAME - PREFIX.length

function toMessage (msg) {
  if (typeof msg === 'string') return Buffer.from(msg)
  if (isBytes(msg)) return toBuffer(msg)
  throw new TypeError(`message must be a string or a Buffer, got ${describe(msg)}`)
}

class TopicHandle {
  constructor (sockets, topicName, native, opts) {
    this.sockets = sockets
    this.topicName = topicName
    this._native = native
    this._onmessage = opts.onmessage || null
    this._onclose = opts.onclose || null
  }

  get closed () {
    return this._native.closed
  }

  // Sends `msg` to the connected peer `remoteKey`; resolves once sent (delivered only if the
  // remote joined this topic). Rejects (code 'closed') if there is no open connection to it.
  send (remoteKey, msg) {
    const key = key32(remoteKey, 'remote key')
    return this._native.send(key, toMessage(msg)).catch((err) => { throw toError(err) })
  }

  // Sends `msg` to every connected peer; resolves with how many sends succeeded.
  broadcast (msg) {
    return this._native.broadcast(toMessage(msg)).catch((err) => { throw toError(err) })
  }

  // Stops delivering to this handle (the topic stays joined while other handles use it).
  close () {
    call(() => this._native.close())
    this.sockets._handles.delete(this._native.id)
  }
}

class Peersockets extends EventEmitter {
  constructor (swarm) {
    super()
    if (!swarm || typeof swarm.joinMessages !== 'function' || !swarm._native) {
      throw new TypeError('Peersockets needs a swarmplex Swarm')
    }
    this.swarm = swarm
    this._handles = new Map() // native handle id -> TopicHandle
    this._native = call(() => new binding.NativePeersockets(swarm._native, (m) => this._onmessage(m)))
  }

  _onmessage (m) {
    const h = this._handles.get(m.handle)
    if (!h) return
    if (m.closed) return this._handles.delete(m.handle)
    if (h.closed || !h._onmessage) return
    try {
      h._onmessage(m.remote, m.data)
    } catch (err) {
      process.nextTick(() => { throw err }) // an app callback's error is the app's
    }
  }

  // Topic name -> its open handles.
  get topics () {
    const out = new Map()
    for (const h of this._handles.values()) {
      if (h.closed) continue
      if (!out.has(h.topicName)) out.set(h.topicName, new Set())
      out.get(h.topicName).add(h)
    }
    return out
  }

  join (topicName, opts = {}) {
    if (typeof topicName !== 'string' || topicName.length === 0) throw new TypeError(`topicName must be a non-empty string, got ${describe(topicName)}`)
    if (Buffer.byteLength(topicName) > MAX_TOPIC) throw new TypeError(`topicName longer than ${MAX_TOPIC} bytes`)
    opts = checkObject(opts, 'join options')
    for (const k of ['onmessage', 'onclose']) {
      if (opts[k] !== undefined && typeof opts[k] !== 'function') throw new TypeError(`${k} must be a function, got ${describe(opts[k])}`)
    }
    const handle = new TopicHandle(this, topicName, call(() => this._native.join(topicName)), opts)
    this._handles.set(handle._native.id, handle)
    return handle
  }

  // Closes every handle of `topicName` (all topics if omitted), calls their onclose, and stops
  // receiving that topic.
  leave (topicName) {
    if (this.swarm.destroyed) return
    const closed = call(() => this._native.leave(topicName === undefined ? null : topicName))
    for (const id of closed) {
      const h = this._handles.get(id)
      this._handles.delete(id)
      if (h && h._onclose) h._onclose()
    }
  }
}

module.exports = Peersockets
module.exports.Peersockets = Peersockets
module.exports.TopicHandle = TopicHandle
