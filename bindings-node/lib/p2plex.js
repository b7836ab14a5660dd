'use strict'
// swarmplex/p2plex: p2plex's API on the swarmplex engine.
//   const p2plex = require('swarmplex/p2plex')   // instead of require('p2plex')
//
// What differs from the original (see also README.md, "p2plex"):
// - Encryption, authentication and multiplexing are the engine's: every peer has exactly one
//   connection (deduplicated by the engine, whatever announce/lookup both sides use, so no
//   "duplicate connection" errors), and streams are the engine's named/shared streams.
// - keyPair is honoured; findBy* take {signal, timeout} and reject with an AbortError
//   (err.name 'AbortError', code 'ABORT_ERR') or a timeout error (name 'TimeoutError', code
//   'ETIMEDOUT').
// - Auto-close: a stream counts as ended once it is closed (both directions ended, or it was
//   destroyed). When the last stream of a connection ended, this side stops reconnecting to the
//   peer by key (leavePeer) and ends the connection's socket; the connection closes once both
//   sides did that (or after 1 s), and the peer emits 'disconnected'. A connection that never
//   carried a stream is never auto-closed. Peers found through a topic that is still joined
//   with lookup are reconnected by the swarm (as Hyperswarm does).
// - Reopen: every connection gets a new Peer (as the original), emitted by 'connection'.
//   createStream / receiveStream / createSharedStream on a Peer whose connection is gone (or
//   closing) first waits for the old connection to end, then finds the remote again by key
//   (findByPublicKey, bounded by RECONNECT_MS; both sides emit 'connection' with a new Peer)
//   and opens the stream on that new connection: the returned stream works as if nothing
//   happened, and it counts toward the new connection's auto-close. The remote must still be
//   reachable by key (listenSelf) or reconnect to us itself.
const { EventEmitter } = require('events')
const Swarm = require('..')
const SwarmSocket = require('./socket')
const { key32, checkObject, optBool, describe } = require('./errors')
const { binding, toError, call } = require('./native')

const RECONNECT_MS = 30000

function abortError (signal) {
  const err = new Error('The operation was aborted')
  err.name = 'AbortError'
  err.code = 'ABORT_ERR'
  if (signal && signal.reason !== undefined) err.cause = signal.reason
  return err
}

function timeoutError (ms) {
  const err = new Error(`timed out after ${ms} ms`)
  err.name = 'TimeoutError'
  err.code = 'ETIMEDOUT'
  return err
}

function checkId (id) {
  if (typeof id !== 'string') throw new TypeError(`stream id must be a string, got ${describe(id)}`)
  if (Buffer.byteLength(id) > binding.MAX_NAME) throw new TypeError(`stream id longer than ${binding.MAX_NAME} bytes`)
  return id
}

function checkCancel (opts) {
  const { signal, timeout } = opts
  if (signal !== undefined && signal !== null && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`)
  }
  if (timeout !== undefined && timeout !== null && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new TypeError(`timeout must be a non-negative number of milliseconds, got ${describe(timeout)}`)
  }
  return { signal: signal || null, timeout: timeout == null ? null : timeout }
}

class Peer extends EventEmitter {
  constructor (plex, publicKey) {
    super()
    this.plex = plex
    this.publicKey = publicKey
    this.incoming = false
    this.topics = []
    this._hex = publicKey.toString('hex')
    this._socket = null // the connection's socket while the session is live
    this._live = false
    this._closing = false // auto-close or disconnect() under way
    this._streams = new Set()
    this._receiving = new Map() // 'n:'/'s:' + id -> receive calls not yet settled
    this._deferred = new Map() // 'n:'/'s:' + id -> 'stream' notices held while receives run
    this._onTopic = (topic) => this._addTopic(topic)
    this._info = null
  }

  get connected () {
    return this._live && !this._closing
  }

  _addTopic (topic) {
    if (this.topics.some((t) => t.equals(topic))) return
    this.topics.push(Buffer.from(topic))
    this.emit('topic', topic)
  }

  _attach (socket, info) {
    this._socket = socket
    this._live = true
    this._closing = false
    this.incoming = !socket.isInitiator
    if (this._info !== info) {
      if (this._info) this._info.off('topic', this._onTopic)
      this._info = info
      info.on('topic', this._onTopic)
    }
    // The socket carries no p2plex data: keep it flowing so the remote's end is seen.
    socket.on('error', (err) => this._error(err))
    socket.resume()
    for (const t of info.topics) this._addTopic(t)
  }

  _error (err) {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  _ondisconnection () {
    if (!this._live) return
    this._live = false
    this._closing = false
    const s = this._socket
    this._socket = null
    if (s && !s.destroyed) s.destroy()
    this.plex.peers.delete(this)
    this.emit('disconnected')
  }

  // The peer whose connection carries a new stream: this one while its connection is live;
  // otherwise (closed, or closing) the peer of a new connection to the same key, found by key
  // once the old connection ended.
  async _carrier () {
    for (;;) {
      if (this.plex.destroyed) throw new Error('p2plex destroyed')
      if (this._live && !this._closing) return this
      if (this._live) {
        await new Promise((resolve) => this.once('disconnected', resolve))
        continue
      }
      const cur = this.plex._byKey.get(this._hex)
      if (cur && cur !== this && cur.connected) return cur
      await this.plex.findByPublicKey(this.publicKey, { timeout: RECONNECT_MS })
      const next = this.plex._byKey.get(this._hex)
      if (next && next !== this && next.connected) return next
    }
  }

  _open (method, id, counted) {
    const key = (method === 'receiveStream' ? 'n:' : 's:') + id
    let stream = null
    // A receive on a live peer counts itself at once, before any await, so that a 'stream'
    // event handled meanwhile leaves the stream to it (see _onstream).
    const now = this.connected ? this : null
    if (counted && now) now._count(key, 1)
    const opening = (async () => {
      let carrier = now
      try {
        await null // `stream` is assigned once this function has returned its promise
        if (carrier === null || !carrier.connected) {
          if (counted && carrier) carrier._count(key, -1)
          carrier = null
          carrier = await this._carrier()
          if (counted) carrier._count(key, 1)
        }
        if (stream.destroyed) throw new Error('stream destroyed before it opened')
        carrier._track(stream)
        return await carrier._socket._native[method](id)
      } finally {
        if (counted && carrier) carrier._count(key, -1)
      }
    })().catch((err) => { throw toError(err) })
    stream = new SwarmSocket(null, this.plex.publicKey, { opening, remotePublicKey: this.publicKey, name: id })
    return stream
  }

  // Receives under way per 'n:'/'s:' + id (they take the stream a 'stream' event announces).
  // Once none is left, the notices held meanwhile announce what the receives did not take.
  _count (key, delta) {
    const n = (this._receiving.get(key) || 0) + delta
    if (n > 0) return this._receiving.set(key, n)
    this._receiving.delete(key)
    const held = this._deferred.get(key)
    if (!held) return
    this._deferred.delete(key)
    process.nextTick(() => {
      for (let i = 0; i < held; i++) this._announce(key.slice(2), key[0] === 's')
    })
  }

  // Counts `stream` toward this connection's auto-close.
  _track (stream) {
    this._streams.add(stream)
    stream.once('close', () => this._streamClosed(stream))
  }

  _streamClosed (stream) {
    if (!this._streams.delete(stream)) return
    if (this._streams.size > 0 || !this._live || this._closing || this.plex.destroyed) return
    // The last stream ended: drop the connection (see the header).
    this._closing = true
    try { this.plex.swarm.leavePeer(this.publicKey) } catch {}
    if (this._socket && !this._socket.destroyed) this._socket.end()
  }

  // An inbound stream nobody asked for (yet).
  _onstream (id, shared) {
    const key = (shared ? 's:' : 'n:') + id
    if (this._receiving.get(key)) {
      // A receive under way takes one such stream: hold the notice until it settled.
      this._deferred.set(key, (this._deferred.get(key) || 0) + 1)
      return
    }
    this._announce(id, shared)
  }

  // Takes an announced stream without waiting (none is left if a receive took it first) and
  // emits it as 'stream'.
  _announce (id, shared) {
    if (!this._live) return
    let native
    try {
      native = this._socket._native.takeParkedStream(id, shared)
    } catch {
      return // the connection is gone
    }
    if (!native) return
    const stream = new SwarmSocket(native, this.plex.publicKey, { name: id })
    this._track(stream)
    this.emit('stream', stream, id)
  }

  createStream (id) {
    return this._open('createStream', checkId(id), false)
  }

  receiveStream (id) {
    return this._open('receiveStream', checkId(id), true)
  }

  createSharedStream (id) {
    return this._open('createSharedStream', checkId(id), true)
  }

  ban () {
    call(() => this.plex.swarm._native.ban(this.publicKey))
  }

  // Closes the connection (every stream on it) and resolves once it has ended.
  async disconnect () {
    try { this.plex.swarm.leavePeer(this.publicKey) } catch {}
    if (!this._live) return
    if (this.plex._byKey.get(this._hex) !== this) return
    const gone = new Promise((resolve) => this.once('disconnected', resolve))
    this._closing = true
    for (const s of this._streams) s.destroy()
    const socket = this._socket
    if (socket) socket.destroy()
    await gone
  }
}

class P2Plex extends EventEmitter {
  constructor (opts = {}) {
    super()
    opts = checkObject(opts, 'p2plex options')
    const { keyPair, listenSelf, ...swarmOpts } = opts
    const listen = optBool(opts, 'listenSelf', true)
    this.swarm = new Swarm({ ...(keyPair ? { keyPair } : {}), ...swarmOpts })
    this.keyPair = this.swarm.keyPair
    this.publicKey = this.keyPair.publicKey
    this.peers = new Set()
    this.destroyed = false
    this._byKey = new Map() // hex -> Peer
    this._waiters = new Map() // hex -> Set of resolve(peer)
    this.swarm.on('connection', (socket, info) => this._onconnection(socket, info))
    this.swarm.on('disconnection', (remote) => {
      const peer = this._byKey.get(remote.toString('hex'))
      if (peer) peer._ondisconnection()
    })
    this.swarm.on('stream', (remote, name, shared) => {
      const peer = this._byKey.get(remote.toString('hex'))
      if (peer && peer._live) peer._onstream(name, shared)
    })
    this._listening = listen ? this.swarm.listen().catch(noop) : null
  }

  _onconnection (socket, info) {
    const hex = info.publicKey.toString('hex')
    const old = this._byKey.get(hex)
    if (old && old._live) old._ondisconnection() // a replaced connection (should not happen)
    // A new Peer per connection (as the original); _byKey holds the current one.
    const peer = new Peer(this, Buffer.from(info.publicKey))
    this._byKey.set(hex, peer)
    peer._attach(socket, info)
    this.peers.add(peer)
    const waiters = this._waiters.get(hex)
    if (waiters) {
      this._waiters.delete(hex)
      for (const w of waiters) w(peer)
    }
    this.emit('connection', peer)
  }

  // Resolves with the peer for `hex` once it is connected; bounded by signal/timeout.
  _waitPeer (hex, { signal, timeout }, onCancel) {
    const peer = this._byKey.get(hex)
    if (peer && peer.connected) return Promise.resolve(peer)
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        onCancel()
        return reject(abortError(signal))
      }
      let timer = null
      let set = this._waiters.get(hex)
      if (!set) this._waiters.set(hex, (set = new Set()))
      const cleanup = () => {
        set.delete(found)
        if (set.size === 0 && this._waiters.get(hex) === set) this._waiters.delete(hex)
        if (timer) clearTimeout(timer)
        if (signal) signal.removeEventListener('abort', onAbort)
      }
      const fail = (err) => {
        cleanup()
        onCancel()
        reject(err)
      }
      const found = (peer) => {
        if (!peer) return fail(new Error('p2plex destroyed'))
        cleanup()
        resolve(peer)
      }
      const onAbort = () => fail(abortError(signal))
      set.add(found)
      if (signal) signal.addEventListener('abort', onAbort, { once: true })
      if (timeout !== null) timer = setTimeout(() => fail(timeoutError(timeout)), timeout)
    })
  }

  // Finds the peer by its key (its listenSelf announce) and connects to it.
  async findByPublicKey (publicKey, opts = {}) {
    publicKey = key32(publicKey, 'public key')
    const cancel = checkCancel(checkObject(opts, 'findByPublicKey options'))
    if (this.destroyed) throw new Error('p2plex destroyed')
    if (publicKey.equals(this.publicKey)) throw new TypeError('cannot find yourself')
    const hex = publicKey.toString('hex')
    const peer = this._byKey.get(hex)
    if (peer && peer.connected) return peer
    this.swarm.joinPeer(publicKey)
    return this._waitPeer(hex, cancel, () => {
      if (!this.destroyed) try { this.swarm.leavePeer(publicKey) } catch {}
    })
  }

  // Joins `topic` and resolves with the peer `publicKey` once connected to it there.
  async findByTopicAndPublicKey (topic, publicKey, opts = {}) {
    topic = key32(topic, 'topic')
    publicKey = key32(publicKey, 'public key')
    opts = checkObject(opts, 'findByTopicAndPublicKey options')
    const cancel = checkCancel(opts)
    if (this.destroyed) throw new Error('p2plex destroyed')
    const hex = publicKey.toString('hex')
    const peer = this._byKey.get(hex)
    if (peer && peer.connected) return peer
    const wasJoined = !!this.swarm.status(topic)
    this.join(topic, opts).catch(noop)
    return this._waitPeer(hex, cancel, () => {
      if (!wasJoined && !this.destroyed) this.leave(topic).catch(noop)
    })
  }

  // Announces and/or looks up `topic`; resolves once the first full round completed.
  async join (topic, opts = {}) {
    topic = key32(topic, 'topic')
    opts = checkObject(opts, 'join options')
    const announce = optBool(opts, 'announce', false)
    const lookup = optBool(opts, 'lookup', true)
    if (!announce && !lookup) throw new TypeError('join needs announce, lookup or both')
    if (this.destroyed) throw new Error('p2plex destroyed')
    const d = this.swarm.join(topic, { server: announce, client: lookup })
    await d.flushed()
  }

  async leave (topic) {
    await this.swarm.leave(key32(topic, 'topic'))
  }

  async destroy () {
    if (this.destroyed) return this._destroying
    this.destroyed = true
    for (const peer of this._byKey.values()) {
      for (const s of peer._streams) s.destroy()
    }
    for (const set of [...this._waiters.values()]) {
      for (const w of [...set]) w(null)
    }
    this._waiters.clear()
    this._destroying = this.swarm.destroy().then(() => {
      for (const peer of this._byKey.values()) peer._ondisconnection()
    })
    return this._destroying
  }
}

function noop () {}

function p2plex (opts) {
  return new P2Plex(opts)
}

module.exports = p2plex
module.exports.p2plex = p2plex
module.exports.P2Plex = P2Plex
module.exports.Peer = Peer
