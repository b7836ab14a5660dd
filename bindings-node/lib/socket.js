'use strict'
const { Duplex } = require('stream')
const { call } = require('./native')

// How long a connection whose socket ended cleanly both ways lingers (so the last bytes and the
// end marker reach the remote before the transport closes), unless the remote closes first.
const LINGER_MS = 1000
// How long a socket whose connection ended waits for its stream's last events.
const SETTLE_MS = 1000

// Node's error codes for the engine's ErrorKinds that end a socket (Hyperswarm's sockets carry
// udx's ECONNRESET / ETIMEDOUT). The engine's own kind stays in err.kind.
const NODE_CODES = {
  reset: 'ECONNRESET',
  relay_limit: 'ECONNRESET',
  closed: 'ECONNRESET',
  duplicate: 'ECONNRESET',
  firewalled: 'ECONNRESET',
  timeout: 'ETIMEDOUT',
  connect: 'ECONNREFUSED'
}

function connError (kind, message) {
  const err = new Error(message)
  err.code = NODE_CODES[kind] || kind
  err.kind = kind
  return err
}

// The encrypted socket to one peer: a Node Duplex.
// - write() returns false once 16 KiB are buffered in JS (after up to 1 MiB handed to the
//   engine) and 'drain' follows as the transport accepts data.
// - Reads are pulled from the engine one chunk per _read(): nothing is read from the network
//   while the readable side is full, so backpressure reaches the remote writer.
// - end() half-closes. As with Hyperswarm's streamx sockets, once the remote's end was reached
//   (nothing left unread) and our end was sent, the socket closes by itself — whether or not
//   anyone reads it — and the connection with it. destroy() resets the stream and closes the
//   connection; the remote's socket errors with code ECONNRESET (err.kind: the engine's kind).
// - flush() resolves once everything written so far was flushed to the transport.
// - No 'error' listener is attached: as with Hyperswarm, add one.
// The same class carries a connection's named and shared streams (p2plex): then `native` is
// null and `opts.opening` a promise of the native stream; Node's construct hook holds writes and
// reads until it resolves (a rejection destroys the stream with that error). Destroying such a
// stream resets only that stream, never the connection.
class SwarmSocket extends Duplex {
  constructor (native, publicKey, opts = {}) {
    const opening = native ? null : opts.opening
    super({ allowHalfOpen: true, construct: opening ? function (cb) { this._open(opening, cb) } : undefined })
    this._native = null
    this._ended = false // remote ended cleanly
    this._finished = false // we ended cleanly
    this._writeCb = null
    this._finalCb = null
    this._flushWaiters = [] // flush() calls waiting for Node's write buffer to reach the engine
    this._sessionErr = null // set when the connection ended under this socket
    this._settleTimer = null
    this.publicKey = publicKey
    this.name = opts.name || ''
    if (native) {
      this.opened = Promise.resolve(true)
      this._attach(native)
    } else {
      this.remotePublicKey = opts.remotePublicKey || null
      this.handshakeHash = null
      this.isInitiator = false
      // Settled by _open once the native stream is attached (or failed).
      this.opened = new Promise((resolve) => { this._settleOpened = resolve })
    }
  }

  _attach (native) {
    this._native = native
    this.remotePublicKey = native.remotePublicKey
    this.handshakeHash = native.handshakeHash
    this.isInitiator = native.isInitiator
    // swarmplex extensions: how the connection runs ('quic', 'tcp' or 'relay') and where to.
    this.transport = native.transport
    this.remoteMultiaddr = native.remoteAddress
    // swarmplex extension: how the bytes travel (direct, or through which relay).
    this.path = { relayed: this.transport === 'relay', relay: native.relay, transport: this.transport, remoteAddress: this.remoteMultiaddr }
    const m = /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(this.remoteMultiaddr)
    this.remoteAddress = this.transport !== 'relay' && m ? m[1] : this.remoteMultiaddr
    this.remotePort = this.transport !== 'relay' && m ? Number(m[2]) : 0
    call(() => native.start((ev) => this._onevent(ev)))
    // As a secret stream does once its handshake is done (the engine's already is): after the
    // swarm's 'connection' event, so its listeners see it.
    process.nextTick(() => { if (!this.destroyed) this.emit('open') })
  }

  _open (opening, cb) {
    const done = (err) => {
      this._settleOpened(!err && this._native !== null)
      cb(err)
    }
    opening.then((native) => {
      if (this.destroyed) {
        try { native.destroy() } catch {}
        return done()
      }
      try {
        this._attach(native)
      } catch (err) {
        return done(err)
      }
      done()
    }, (err) => done(err))
  }

  // Hyperswarm/secret-stream compatibility no-ops (the engine runs its own keep-alives).
  setKeepAlive () {}
  setTimeout () {}

  _onevent (ev) {
    if (this.destroyed) return
    switch (ev.kind) {
      case 'data':
        this.push(ev.data)
        return
      case 'end':
        this._ended = true
        this.push(null)
        // Node emits 'end' only to a reader; streamx (Hyperswarm) as soon as the buffer is
        // empty. read(0) ends an empty, unread stream now (buffered data still comes first).
        this.read(0)
        this._settle()
        return
      case 'drain': {
        const cb = this._writeCb
        this._writeCb = null
        if (cb !== null) cb()
        // The callback handed Node's buffered chunks on; all there if nothing waits any more.
        if (this._writeCb === null && this.writableLength === 0) this._wakeFlushes()
        return
      }
      case 'ended': {
        this._finished = true
        const cb = this._finalCb
        this._finalCb = null
        if (cb) cb()
        this._wakeFlushes()
        this._settle()
        return
      }
      case 'error':
        this.destroy(connError(ev.code, ev.message))
    }
  }

  // The connection ended (the swarm saw it). Its streams' own events travel separately and may
  // still bring the remote's end and ours: wait for them (the reader reports how the stream
  // ended once it may read), then close cleanly or fail with `err`. Events that never come
  // (a reader stalled by a full buffer) fail it after SETTLE_MS.
  _sessionEnded (err) {
    if (this.destroyed || this._sessionErr !== null) return
    this._sessionErr = err
    try { this._native.pull() } catch {}
    this._settleTimer = setTimeout(() => { if (!this.destroyed) this.destroy(err) }, SETTLE_MS)
    this._settle()
  }

  _settle () {
    if (this._sessionErr === null || this.destroyed || !this._ended) return
    if (this._finalCb !== null) return // our end is on its way
    clearTimeout(this._settleTimer)
    // Ended both ways: closes by itself once its last bytes are read, as a streamx socket does.
    if (this._finished) {
      if (this.readableLength === 0) this.destroy()
      return
    }
    this.destroy(this._sessionErr) // the remote ended, and we can no longer write
  }

  _wakeFlushes () {
    const waiters = this._flushWaiters
    this._flushWaiters = []
    for (const wake of waiters) wake()
  }

  // Hyperswarm's (secret stream's) flush(): resolves true once everything written so far was
  // flushed to the transport (not a delivery receipt: the transports give none), false if the
  // socket never opened or was destroyed first.
  async flush () {
    if (!(await this.opened) || this._native === null) return false
    if (this._writeCb !== null || this.writableLength > 0) {
      await new Promise((resolve) => this._flushWaiters.push(resolve))
    }
    if (this.destroyed) return false
    if (this._finished) return true
    try {
      return await this._native.flush()
    } catch {
      return false
    }
  }

  _read () {
    try { this._native.pull() } catch {}
  }

  // The engine takes up to 1 MiB not yet accepted by the transport (like a kernel socket
  // buffer); past that the write's callback waits for the engine's 'drain'.
  _send (data, cb) {
    let room
    try {
      room = call(() => this._native.write(data))
    } catch (err) {
      return cb(err)
    }
    if (room) cb()
    else this._writeCb = cb
  }

  _write (chunk, encoding, cb) {
    this._send(chunk, cb)
  }

  _writev (chunks, cb) {
    this._send(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb)
  }

  _final (cb) {
    try {
      call(() => this._native.end())
    } catch (err) {
      return cb(err)
    }
    this._finalCb = cb
  }

  _destroy (err, cb) {
    if (this._native === null) return cb(err) // never opened
    try {
      if (this._ended && this._finished) call(() => this._native.closeAfter(LINGER_MS))
      else call(() => this._native.destroy())
    } catch {}
    // A write or end still waiting on the engine never completes: Node reports it destroyed.
    this._writeCb = this._finalCb = null
    clearTimeout(this._settleTimer)
    this._wakeFlushes()
    cb(err)
  }
}

module.exports = SwarmSocket
module.exports.connError = connError
