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
class SwarmSocket extends Duplex {
  constructor (native, publicKey) {
    super({ allowHalfOpen: true })
    this._native = native
    this._ended = false // remote ended cleanly
    this._finished = false // we ended cleanly
    this._writeCb = null
    this._finalCb = null
    this.remotePublicKey = native.remotePublicKey
    this.publicKey = publicKey
    this.handshakeHash = native.handshakeHash
    this.isInitiator = native.isInitiator
    this.opened = Promise.resolve(true)
    call(() => native.start((ev) => this._onevent(ev)))
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
