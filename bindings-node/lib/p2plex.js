'use strict'
// swarmplex/p2plex: p2plex's API on the swarmplex engine.
//   const p2plex = require('swarmplex/p2plex')   // instead of require('p2plex')
//
// The behaviour is the core's (`swarmplex::plex`, see its docs); this file translates it to
// p2plex's EventEmitter API. What differs from the original (see also README.md, "p2plex"):
// - Encryption, authentication and multiplexing are the engine's: every peer has exactly one
//   connection (deduplicated by the engine, whatever announce/lookup both sides use, so no
//   "duplicate connection" errors), and streams are the engine's named/shared streams.
// - keyPair is honoured; findBy* take {signal, timeout} and reject with an AbortError
//   (err.name 'AbortError', code 'ABORT_ERR') or a timeout error (name 'TimeoutError', code
//   'ETIMEDOUT').
// - Auto-close: a stream counts until it finished (both directions ended, or it failed, was
//   destroyed or was garbage-collected). When the last stream of a connection finished, this
//   side stops reconnecting to the peer by key and ends the connection's socket; the connection
//   closes once both sides did that, and the peer emits 'disconnected'. A connection that never
//   carried a stream is never auto-closed. Peers found through a topic that is still joined
//   with lookup are reconnected by the swarm (as Hyperswarm does).
// - Reopen: every connection gets a new Peer (as the original), emitted by 'connection'.
//   createStream / receiveStream / createSharedStream on a Peer whose connection is gone (or
//   closing) first waits for the old connection to end, then finds the remote again by key
//   (up to 30 s) and opens the stream on the new connection. The remote must still be
//   reachable by key (listenSelf) or reconnect to us itself.
// - receiveStream claims its stream when called: one that arrived before and was not yet
//   handed to a 'stream' listener goes to it.
const { EventEmitter } = require('events')
const Swarm = require('..')
const SwarmSocket = require('./socket')
const { key32, checkObject, optBool, describe } = require('./errors')
const { binding, toError, call } = require('./native')

// Error kinds of a connection that ended as asked, not by a failure.
const CLEAN_ENDS = new Set(['closed', 'duplicate', 'firewalled'])

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
  constructor (plex, native) {
    super()
    this.plex = plex
    this.publicKey = native.publicKey
    this.incoming = native.incoming
    this.topics = native.topics
    this._native = native
    this._gone = false
    this._told = false // 'disconnected' emitted
    this._streams = new Set() // the app's streams on this connection, until they close
    this._announced = false
    this._ready = new Promise((resolve) => { this._setReady = resolve }) // 'connection' emitted
  }

  get connected () {
    return !this._gone && this._native.connected
  }

  _addTopic (topic) {
    if (this.topics.some((t) => t.equals(topic))) return
    this.topics.push(Buffer.from(topic))
    this.emit('topic', topic)
  }

  _error (err) {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  // The connection ended. 'disconnected' waits until the app's streams on it closed (the
  // engine may see both ends of the last stream before the app has read them).
  _ondisconnection () {
    if (this._gone) return
    this._gone = true
    this._setReady()
    this.plex.peers.delete(this)
    this.plex._byId.delete(this._native.id)
    this._emitGone()
  }

  // Emitted on the next turn of the event loop, so code that awaited its last stream (whose
  // continuation runs after the stream's 'close') can still listen for it, as with p2plex,
  // whose connection closed a network round trip later.
  _emitGone () {
    if (this._gone && this._streams.size === 0 && !this._told) {
      this._told = true
      setImmediate(() => this.emit('disconnected'))
    }
  }

  // The native open claims its stream now (in call order); the socket waits for it.
  _open (method, id) {
    let opening
    try {
      opening = this._native[method](id)
    } catch (err) {
      opening = Promise.reject(err)
    }
    opening = opening.catch((err) => { throw toError(err) })
    const stream = new SwarmSocket(null, this.plex.publicKey, { opening, remotePublicKey: this.publicKey, name: id })
    // One opened on a gone (or closing) connection reopens on a new one: it does not hold
    // this peer's 'disconnected' back.
    return this.connected ? this._track(stream) : this.plex._track(stream)
  }

  _track (stream) {
    this._streams.add(stream)
    stream.once('close', () => this._forget(stream))
    return this.plex._track(stream)
  }

  _forget (stream) {
    if (this._streams.delete(stream)) this._emitGone()
  }

  createStream (id) {
    return this._open('createStream', checkId(id))
  }

  receiveStream (id) {
    return this._open('receiveStream', checkId(id))
  }

  createSharedStream (id) {
    return this._open('createSharedStream', checkId(id))
  }

  ban () {
    call(() => this._native.ban())
  }

  // Closes the connection (every stream on it) and resolves once it has ended.
  async disconnect () {
    await this._native.disconnect().catch((err) => { throw toError(err) })
    this._ondisconnection()
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
    this._native = call(() => new binding.NativePlex(this.swarm._native, listen))
    this._byId = new Map() // native peer id -> Peer
    this._searches = 0
    this._streams = new Set()
    // The core's plex saw each swarm event before these listeners run (see src/plex.rs).
    this.swarm.on('connection', (socket, info) => this._onconnection(socket, info))
    this.swarm.on('disconnection', (remote, err) => this._ondisconnection(remote, err))
    this.swarm.on('stream', (remote, name, shared) => this._onstream(remote, name, shared))
  }

  // The JS Peer of a native peer (one per connection).
  _peerOf (native) {
    let peer = this._byId.get(native.id)
    if (!peer) {
      peer = new Peer(this, native)
      this._byId.set(native.id, peer)
      if (!native.live) peer._ondisconnection() // ended before JS saw it
    }
    return peer
  }

  _current (remote) {
    const native = this._native.peer(remote)
    return native ? this._byId.get(native.id) || null : null
  }

  _onconnection (socket, info) {
    const native = call(() => this._native.peer(info.publicKey))
    if (!native || this.destroyed) return
    const peer = this._peerOf(native)
    if (peer._announced || peer._gone) return
    peer._announced = true
    // The socket carries no p2plex data (the core reads it); how the connection ended comes
    // with the swarm's 'disconnection' event.
    socket.on('error', noop)
    info.on('topic', (topic) => { if (this._current(info.publicKey) === peer) peer._addTopic(topic) })
    this.peers.add(peer)
    this.emit('connection', peer)
    peer._setReady()
  }

  // A connection ended: its peer emits 'error' first if a failure cut streams still open on
  // it (not a close, ban, duplicate, nor the transport's close racing an auto-close's goodbye,
  // when every stream had finished), then 'disconnected'.
  _ondisconnection (remote, err) {
    for (const peer of [...this._byId.values()]) {
      if (!peer.publicKey.equals(remote) || peer._native.live || peer._gone) continue
      if (err && !CLEAN_ENDS.has(err.code) && peer._native.openStreams > 0) peer._error(err)
      peer._ondisconnection()
    }
  }

  // An inbound stream nobody claimed: a 'stream' event if it is still unclaimed.
  _onstream (remote, name, shared) {
    const peer = this._current(remote)
    if (!peer || peer._gone) return
    const native = call(() => peer._native.takeStream(name, shared))
    if (native) peer.emit('stream', peer._track(new SwarmSocket(native, this.publicKey, { name })), name)
  }

  // The streams handed to the app, destroyed quietly by destroy() (as p2plex's destroy is
  // graceful: no 'error' on streams the remote's own destroy would otherwise fail).
  _track (stream) {
    this._streams.add(stream)
    stream.once('close', () => this._streams.delete(stream))
    return stream
  }

  // Runs native search `start(id)` with the caller's signal/timeout; resolves with its Peer
  // once the app has seen it in a 'connection' event.
  async _search ({ signal, timeout }, start) {
    if (signal && signal.aborted) throw abortError(signal)
    const id = this._searches++
    let started
    try {
      started = start(id)
    } catch (err) {
      throw toError(err)
    }
    const found = started.then(
      async (native) => {
        const peer = this._peerOf(native)
        await peer._ready
        return peer
      },
      (err) => {
        err = toError(err)
        throw err.code === 'timeout' ? timeoutError(timeout) : err
      }
    )
    if (!signal) return found
    let onAbort
    const aborted = new Promise((resolve, reject) => {
      onAbort = () => {
        call(() => this._native.cancel(id))
        reject(abortError(signal))
      }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([found, aborted])
    } finally {
      signal.removeEventListener('abort', onAbort)
      found.catch(noop)
    }
  }

  // Finds the peer by its key (its listenSelf announce) and connects to it.
  async findByPublicKey (publicKey, opts = {}) {
    publicKey = key32(publicKey, 'public key')
    const cancel = checkCancel(checkObject(opts, 'findByPublicKey options'))
    if (this.destroyed) throw new Error('p2plex destroyed')
    if (publicKey.equals(this.publicKey)) throw new TypeError('cannot find yourself')
    return this._search(cancel, (id) => this._native.findByPublicKey(publicKey, cancel.timeout, id))
  }

  // Joins `topic` and resolves with the peer `publicKey` once connected to it there; a search
  // that did not finish leaves the topic again unless it was joined before.
  async findByTopicAndPublicKey (topic, publicKey, opts = {}) {
    topic = key32(topic, 'topic')
    publicKey = key32(publicKey, 'public key')
    opts = checkObject(opts, 'findByTopicAndPublicKey options')
    const cancel = checkCancel(opts)
    if (this.destroyed) throw new Error('p2plex destroyed')
    const wasJoined = !!this.swarm.status(topic)
    this.join(topic, opts).catch(noop)
    try {
      return await this._search(cancel, (id) => this._native.waitForPeer(publicKey, cancel.timeout, id))
    } catch (err) {
      if (!wasJoined && !this.destroyed) this.leave(topic).catch(noop)
      throw err
    }
  }

  // Announces and/or looks up `topic`; resolves once the first full round completed.
  async join (topic, opts = {}) {
    topic = key32(topic, 'topic')
    opts = checkObject(opts, 'join options')
    const announce = optBool(opts, 'announce', false)
    const lookup = optBool(opts, 'lookup', true)
    if (!announce && !lookup) throw new TypeError('join needs announce, lookup or both')
    if (this.destroyed) throw new Error('p2plex destroyed')
    await this.swarm.join(topic, { server: announce, client: lookup }).flushed()
  }

  async leave (topic) {
    await this.swarm.leave(key32(topic, 'topic'))
  }

  async destroy () {
    if (this.destroyed) return this._destroying
    this.destroyed = true
    for (const s of this._streams) s.destroy()
    this._destroying = (async () => {
      await this._native.destroy()
      await this.swarm.destroy()
      for (const peer of [...this._byId.values()]) peer._ondisconnection()
    })()
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
