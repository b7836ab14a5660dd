'use strict'
const { Duplex } = require('stream')
const { call } = require('./native')

// How long a connection whose socket ended cleanly both ways lingers (so the last bytes and the
// end marker reach the remote before the transport closes), unless the remote closes first.
const LINGER_MS = 1000

function connError (code, message) {
  const err = new Error(message)
  err.code = code
  return err
}

// The encrypted socket to one peer: a Node Duplex.
// - write() returns false once 16 KiB are buffered in JS (after up to 1 MiB handed to the
//   engine) and 'drain' follows as the transport accepts data.
// - Reads are pulled from the engine one chunk per _read(): nothing is read from the network
//   while the readable side is full, so backpressure reaches the remote writer.
// - end() half-closes; destroy() resets the stream and closes the connection.
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
    this.publicKey = publicKey
    this.name = opts.name || ''
    if (native) {
      this.opened = Promise.resolve(true)
      this._attach(native)
    } else {
      this.remotePublicKey = opts.remotePublicKey || null
      this.handshakeHash = null
      this.isInitiator = false
      this.opened = opening.then(() => true, () => false)
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
    const m = /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(this.remoteMultiaddr)
    this.remoteAddress = this.transport !== 'relay' && m ? m[1] : this.remoteMultiaddr
    this.remotePort = this.transport !== 'relay' && m ? Number(m[2]) : 0
    call(() => native.start((ev) => this._onevent(ev)))
  }

  _open (opening, cb) {
    opening.then((native) => {
      if (this.destroyed) {
        try { native.destroy() } catch {}
        return cb()
      }
      try {
        this._attach(native)
      } catch (err) {
        return cb(err)
      }
      cb()
    }, (err) => cb(err))
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
        return
      case 'drain': {
        const cb = this._writeCb
        this._writeCb = null
        if (cb !== null) cb()
        return
      }
      case 'ended': {
        this._finished = true
        const cb = this._finalCb
        this._finalCb = null
        if (cb) cb()
        return
      }
      case 'error':
        this.destroy(connError(ev.code, ev.message))
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
    cb(err)
  }
}

module.exports = SwarmSocket
