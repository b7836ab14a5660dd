'use strict'
// swarmplex/peer-exchange: peer-exchange's API on the swarmplex engine.
//   const Exchange = require('swarmplex/peer-exchange')   // instead of require('peer-exchange')
//
// What differs from the original:
// - Transports are 'tcp', 'quic' and 'websocket' (libp2p's; 'webrtc' is not built). Every
//   connection is authenticated and encrypted (Noise or TLS 1.3) whatever the transport.
// - getNewPeer: the asked peer offers a random peer of the network that we are not connected
//   to. We dial it directly first (at the addresses the asked peer knows); if that fails or takes
//   over 1 s, we connect through the asked peer, which relays (circuit relay v2) and helps both
//   sides punch through NAT (DCUtR). A relayed connection that hole punching could not upgrade
//   stays relayed within the relay's bounds: every node relays at most 16 circuits (4 per
//   peer), 1 MiB and 2 min each, 30 new circuits per peer per minute (opts.relay changes them).
// - Only nodes with the same networkId can connect (the id selects the wire protocol).
// - A Peer is the connection's Duplex socket (the same class as Hyperswarm sockets here), with
//   remotePublicKey, remoteAddress, remotePort, transport ('tcp', 'quic', 'websocket' or 'relay'),
//   `socket` (itself, so `peer.socket.transport` works as in the original) and getNewPeer().
// - accept's callback also gets the bound address: cb(err, { transport, host, port, multiaddr }).
// - Each method takes an optional callback and also returns a promise.
// - unaccept(transport, [cb]) also returns a promise; it resolves once the listeners are closed.
//   Connections already made stay.
const { EventEmitter } = require('events')
const Swarm = require('..')
const { describe, checkObject } = require('./errors')
const { binding, toError } = require('./native')

const TRANSPORTS = new Set(['tcp', 'quic', 'websocket'])

function checkTransport (transport) {
  if (typeof transport !== 'string') throw new TypeError(`transport must be a string, got ${describe(transport)}`)
  if (!TRANSPORTS.has(transport)) throw new TypeError(`unsupported transport ${JSON.stringify(transport)}: use 'tcp', 'quic' or 'websocket'`)
  return transport
}

function checkPort (port) {
  if (port === undefined) return 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`port must be an integer 0..65535, got ${describe(port)} ${port}`)
  return port
}

// The multiaddr of `transport` at `host`:`port` (the engine's rule, shared with Python); a host
// that is not an IP address or DNS name is a TypeError.
function multiaddr (transport, host, port) {
  if (typeof host !== 'string') throw new TypeError(`host must be a string, got ${describe(host)}`)
  try {
    return binding.transportAddr(transport, host, port)
  } catch (err) {
    throw new TypeError(err.message)
  }
}

// Calls `cb(err, value)` if given; returns the promise either way (without an unhandled
// rejection when a callback took the error).
function settle (promise, cb, what) {
  if (cb !== undefined && typeof cb !== 'function') throw new TypeError(`${what} callback must be a function, got ${describe(cb)}`)
  if (!cb) return promise
  promise.then((v) => cb(null, v), (err) => cb(err))
  return promise.catch(() => {})
}

class Exchange extends EventEmitter {
  constructor (networkId, opts = {}) {
    super()
    if (typeof networkId !== 'string' || networkId === '') throw new TypeError(`networkId must be a non-empty string, got ${describe(networkId)}`)
    opts = checkObject(opts, 'Exchange options')
    const { keyPair, seed, maxPeers, firewall } = opts
    this.id = networkId
    this.peers = []
    this.closed = false
    this._waiting = new Map() // remote hex -> resolve(peer)
    this._listening = [] // { transport, multiaddr } of every accept
    this.swarm = new Swarm({ exchange: networkId, keyPair, seed, maxPeers, firewall })
    this.swarm.on('connection', (socket) => this._onpeer(socket))
  }

  get publicKey () {
    return this.swarm.keyPair.publicKey
  }

  _onpeer (socket) {
    socket.socket = socket
    socket.getNewPeer = (cb) => settle(this._getNewPeer(socket.remotePublicKey), cb, 'getNewPeer')
    this.peers.push(socket)
    socket.once('close', () => {
      const i = this.peers.indexOf(socket)
      if (i !== -1) this.peers.splice(i, 1)
    })
    const hex = socket.remotePublicKey.toString('hex')
    const waiting = this._waiting.get(hex)
    if (waiting) {
      this._waiting.delete(hex)
      for (const resolve of waiting) resolve(socket)
    }
    this.emit('peer', socket)
  }

  // The open peer with this key; the engine resolved its connect first, so its 'connection'
  // event is at most a moment behind.
  _peerOf (key) {
    const hex = key.toString('hex')
    const open = this.peers.find((p) => !p.destroyed && p.remotePublicKey.toString('hex') === hex)
    if (open) return open
    return new Promise((resolve) => {
      if (!this._waiting.has(hex)) this._waiting.set(hex, [])
      this._waiting.get(hex).push(resolve)
    })
  }

  _check () {
    if (this.closed) throw new Error('Exchange closed')
  }

  // Begins accepting connections on `transport` ('tcp', 'quic' or 'websocket');
  // opts: { port = 0, host = '0.0.0.0' }.
  accept (transport, opts, cb) {
    if (typeof opts === 'function') [opts, cb] = [{}, opts]
    checkTransport(transport)
    opts = checkObject(opts, 'accept options')
    const port = checkPort(opts.port)
    const addr = multiaddr(transport, opts.host === undefined ? '0.0.0.0' : opts.host, port)
    this._check()
    const p = this.swarm._native.listenOn(addr).then((bound) => {
      const m = /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(bound)
      this._listening.push({ transport, multiaddr: bound })
      return { transport, host: m ? m[1] : null, port: m ? Number(m[2]) : null, multiaddr: bound }
    }, (err) => { throw toError(err) })
    return settle(p, cb, 'accept')
  }

  // Stops accepting connections on `transport` (every listener accept opened for it).
  // Connections already made stay. Rejects with code 'invalid_input' if nothing accepts there.
  unaccept (transport, cb) {
    checkTransport(transport)
    this._check()
    const mine = this._listening.filter((l) => l.transport === transport)
    this._listening = this._listening.filter((l) => l.transport !== transport)
    const p = mine.length === 0
      ? Promise.reject(Object.assign(new Error(`not accepting on ${transport}`), { code: 'invalid_input' }))
      : Promise.all(mine.map((l) => this.swarm._native.stopListening(l.multiaddr))).then(() => {}, (err) => { throw toError(err) })
    return settle(p, cb, 'unaccept')
  }

  // Connects to a known peer: connect('tcp', '10.0.0.2', { port: 8000 }, cb).
  connect (transport, host, opts, cb) {
    if (typeof opts === 'function') [opts, cb] = [{}, opts]
    checkTransport(transport)
    opts = checkObject(opts, 'connect options')
    if (opts.port === undefined) throw new TypeError('connect needs opts.port')
    const addr = multiaddr(transport, host, checkPort(opts.port))
    this._check()
    const p = this.swarm._native.connect(addr).then((key) => this._peerOf(key), (err) => { throw toError(err) })
    return settle(p, cb, 'connect')
  }

  // Asks a random connected peer for a new peer and connects to it (relayed by the asked peer).
  getNewPeer (cb) {
    return settle(this._getNewPeer(null), cb, 'getNewPeer')
  }

  async _getNewPeer (via) {
    this._check()
    let key
    try {
      key = await this.swarm._native.getNewPeer(via || undefined)
    } catch (err) {
      throw toError(err)
    }
    return this._peerOf(key)
  }

  close (cb) {
    this.closed = true
    const p = this.swarm.destroy().then(() => { this.emit('close') })
    return settle(p, cb, 'close')
  }
}

module.exports = Exchange
module.exports.Exchange = Exchange
module.exports.transports = [...TRANSPORTS]
