'use strict'
// swarmplex: Hyperswarm v4's API on the swarmplex Rust engine.
//   const Hyperswarm = require('swarmplex')   // instead of require('hyperswarm')
const { EventEmitter } = require('events')
const net = require('net')
const dgram = require('dgram')
const { binding, toError, call } = require('./lib/native')
const { isBytes, toBuffer, key32, describe, optBool, checkObject } = require('./lib/errors')
const PeerInfo = require('./lib/peer-info')
const { PeerDiscovery, PeerDiscoverySession } = require('./lib/discovery')
const SwarmSocket = require('./lib/socket')

const MAX_PEERS = 64 // Hyperswarm's default
const HONOURED_OPTIONS = new Set([
  'keyPair', 'seed', 'maxPeers', 'firewall', 'bootstrap', 'network', 'mdns', 'listen', 'port',
  // swarmplex extension (used by swarmplex/peer-exchange): a peer-exchange node of this network id.
  'exchange'
])
// Options of Hyperswarm and of the HyperDHT / dht-rpc node it builds (apps pass them through):
// accepted and ignored, as Hyperswarm ignores those it does not use. Any other name is ignored
// too, with a warning (most likely a typo).
const IGNORED_OPTIONS = new Set([
  // Hyperswarm
  'dht', 'maxParallel', 'maxClientConnections', 'maxServerConnections', 'backoffs', 'jitter',
  'relayThrough', 'nodes', 'deferRandomPunch', 'randomPunchInterval', 'handshakeClearWait',
  // HyperDHT and dht-rpc
  'host', 'anyPort', 'ephemeral', 'firewalled', 'adaptive', 'quickFirewall', 'connectionKeepAlive',
  'udx', 'socket', 'concurrency', 'maxAge', 'maxSize', 'addNode', 'filterNode', 'sendDownHints',
  'downHintsRateLimit', 'maxPingDelay', 'limit', 'size', 'retry', 'ttl', 'session', 'pool',
  'holepunch', 'relayKeepAlive', 'reusableSocket', 'shareLocalAddress', 'createHandshake',
  'createSecretStream'
])

function checkPort (port) {
  const ok = (n) => Number.isInteger(n) && n >= 0 && n <= 65535
  if (ok(port)) return [port, port]
  if (Array.isArray(port) && port.length === 2 && ok(port[0]) && ok(port[1]) && port[0] <= port[1]) return [port[0], port[1]]
  throw new TypeError(`port must be a port number or a [min, max] range, got ${describe(port)}`)
}

function listenAddrs (port) {
  return [`/ip4/0.0.0.0/udp/${port}/quic-v1`, `/ip4/0.0.0.0/tcp/${port}`]
}

function checkKeyPair (kp) {
  if (!kp || typeof kp !== 'object') throw new TypeError(`keyPair must be an object { publicKey, secretKey }, got ${describe(kp)}`)
  const publicKey = key32(kp.publicKey, 'keyPair.publicKey')
  if (!isBytes(kp.secretKey) || kp.secretKey.byteLength !== 64) {
    throw new TypeError(`keyPair.secretKey must be a 64-byte Buffer, got ${describe(kp.secretKey)}`)
  }
  const secretKey = toBuffer(kp.secretKey)
  if (!secretKey.subarray(32).equals(publicKey)) throw new TypeError('keyPair.secretKey does not match keyPair.publicKey')
  return { publicKey, secretKey }
}

function parseOptions (opts) {
  opts = checkObject(opts, 'Swarm options')
  for (const k of Object.keys(opts)) {
    if (!HONOURED_OPTIONS.has(k) && !IGNORED_OPTIONS.has(k)) {
      process.emitWarning(`unknown Swarm option ${k} (ignored)`, { code: 'SWARMPLEX_UNKNOWN_OPTION' })
    }
  }
  if (opts.keyPair !== undefined && opts.seed !== undefined) throw new TypeError('give keyPair or seed, not both')
  let keyPair
  if (opts.keyPair !== undefined) {
    keyPair = checkKeyPair(opts.keyPair)
  } else if (opts.seed !== undefined) {
    if (!isBytes(opts.seed) || opts.seed.byteLength !== 32) throw new TypeError(`seed must be a 32-byte Buffer, got ${describe(opts.seed)}`)
    const [publicKey, secretKey] = call(() => binding.keyPairFromSeed(toBuffer(opts.seed)))
    keyPair = { publicKey, secretKey }
  } else {
    const [publicKey, secretKey] = call(() => binding.randomKeyPair())
    keyPair = { publicKey, secretKey }
  }
  let maxPeers = MAX_PEERS
  if (opts.maxPeers !== undefined && opts.maxPeers !== Infinity) {
    if (!Number.isInteger(opts.maxPeers) || opts.maxPeers < 1 || opts.maxPeers > 0xffffffff) {
      throw new TypeError(`maxPeers must be a positive integer, got ${describe(opts.maxPeers)} ${opts.maxPeers}`)
    }
    maxPeers = opts.maxPeers
  } else if (opts.maxPeers === Infinity) maxPeers = Infinity
  if (opts.firewall !== undefined && opts.firewall !== null && typeof opts.firewall !== 'function') {
    throw new TypeError(`firewall must be a function, got ${describe(opts.firewall)}`)
  }
  let bootstrap
  if (opts.bootstrap !== undefined && opts.bootstrap !== null) {
    if (!Array.isArray(opts.bootstrap) || !opts.bootstrap.every((s) => typeof s === 'string')) {
      throw new TypeError('bootstrap must be an array of multiaddr strings')
    }
    bootstrap = opts.bootstrap.slice()
  }
  if (opts.network !== undefined && typeof opts.network !== 'string') throw new TypeError(`network must be a string, got ${describe(opts.network)}`)
  let listen
  if (opts.listen !== undefined) {
    if (!Array.isArray(opts.listen) || !opts.listen.every((s) => typeof s === 'string')) throw new TypeError('listen must be an array of multiaddr strings')
    listen = opts.listen.slice()
  }
  // Hyperswarm's port (its DHT's UDP port, or a range): here the QUIC and TCP listen port.
  let portRange = null
  if (opts.port !== undefined && opts.port !== null) {
    if (listen !== undefined) throw new TypeError('give listen or port, not both')
    portRange = checkPort(opts.port)
    // One port: listen there from the start. A range: each transport binds the first free port
    // in it once the swarm runs.
    listen = portRange[0] === portRange[1] ? listenAddrs(portRange[0]) : []
  }
  const mdns = optBool(opts, 'mdns', true)
  if (opts.exchange !== undefined && typeof opts.exchange !== 'string') throw new TypeError(`exchange must be a network id string, got ${describe(opts.exchange)}`)
  if (portRange !== null && opts.exchange !== undefined) throw new TypeError('port does not apply to an exchange node')
  return { keyPair, maxPeers, firewall: opts.firewall || null, bootstrap, network: opts.network, listen, portRange, mdns, exchange: opts.exchange }
}

class Hyperswarm extends EventEmitter {
  constructor (opts = {}) {
    super()
    const o = parseOptions(opts)
    this.keyPair = o.keyPair
    this.maxPeers = o.maxPeers
    this.connections = new Set()
    this.peers = new Map()
    this.explicitPeers = new Set()
    this.connecting = 0
    this.destroyed = false
    this.suspended = false
    this.listening = null
    // Hyperswarm's counters. connects.client.attempted counts the engine's dials (the rises of
    // `connecting`); a connection is a client one when we looked its peer up (topic client or
    // joinPeer), else a server one; closed counts opened connections that closed.
    this.stats = {
      updates: 0,
      connects: {
        client: { opened: 0, closed: 0, attempted: 0 },
        server: { opened: 0, closed: 0 }
      },
      bannedPeers: 0
    }
    this._firewall = o.firewall
    this._firewalled = new Set() // hex keys our firewall rejected (their ban is a firewall ban)
    this._discovery = new Map()
    this._sockets = new Map() // remote hex -> open socket
    // Hyperswarm's queue of peers waiting to be connected. joinPeer puts a peer here and hands
    // it to the engine at once (the engine schedules its own dials), so it is empty between calls.
    this._queue = []
    this._destroying = null
    this._native = call(() => new binding.NativeSwarm({
      secretKey: o.keyPair.secretKey,
      bootstrap: o.bootstrap,
      network: o.network,
      maxPeers: o.maxPeers === Infinity ? undefined : o.maxPeers,
      firewall: !!o.firewall,
      mdns: o.mdns,
      listen: o.listen,
      exchange: o.exchange
    }, (ev) => this._onevent(ev)))
    this._bound = o.portRange && o.portRange[0] !== o.portRange[1] ? this._bindInRange(o.portRange) : null
    if (this._bound) this._bound.catch(noop) // reported by listen()
    // Like Hyperswarm's UDP socket, a live swarm keeps the process running; destroy() releases
    // it. (Engine events themselves never hold Node open: their callback is a weak TSFN.)
    this._keepAlive = setInterval(noop, 0x7fffffff)
  }

  _onevent (ev) {
    switch (ev.kind) {
      case 'connection': return this._onconnection(ev)
      case 'disconnected': return this._ondisconnected(ev)
      case 'update':
        if (ev.connecting > this.connecting) this.stats.connects.client.attempted += ev.connecting - this.connecting
        this.connecting = ev.connecting
        this._update()
        return
      case 'ban': {
        const info = this._upsertPeer(ev.remote)
        info.banned = true
        const hex = ev.remote.toString('hex')
        const err = new Error(this._firewalled.delete(hex) ? 'Peer is firewalled' : 'Peer is banned')
        if (!this.destroyed) {
          this.stats.bannedPeers++
          this.emit('ban', info, err)
        }
        return
      }
      case 'topic': {
        const info = this.peers.get(ev.remote.toString('hex'))
        if (info) info._topic(ev.topic)
        return
      }
      case 'stream':
        // swarmplex extension: an inbound named/shared stream nobody was waiting for.
        if (!this.destroyed) this.emit('stream', ev.remote, ev.name, ev.shared)
        return
      case 'message':
        // swarmplex extension: a topic message for a message topic we joined (joinMessages).
        if (!this.destroyed) this.emit('message', ev.remote, ev.name, ev.data)
        return
      case 'reachability':
        // swarmplex extension: whether others can dial us changed (see reachability()).
        if (!this.destroyed) this.emit('reachability', { state: ev.reachability, symmetric: ev.symmetric })
        return
      case 'firewall': return this._onfirewall(ev)
      case 'marker':
        try { this._native.ack(ev.id) } catch {}
    }
  }

  _onfirewall (ev) {
    let reject = true
    try {
      const r = this.destroyed || this.suspended ? true : this._firewall(ev.remote, null)
      if (r && typeof r.then === 'function') {
        r.then((v) => this._firewallReply(ev.id, !!v, ev.remote), () => this._firewallReply(ev.id, true, ev.remote))
        return
      }
      reject = !!r
    } catch {
      reject = true
    }
    this._firewallReply(ev.id, reject, ev.remote)
  }

  _firewallReply (id, reject, remote) {
    if (reject) this._firewalled.add(remote.toString('hex'))
    try { this._native.firewallReply(id, reject) } catch {}
  }

  _update () {
    if (this.destroyed) return
    this.stats.updates++
    this.emit('update')
  }

  // Listens (QUIC and TCP) on the first port of [min, max] free for both. Probed with Node's
  // sockets: the engine's TCP listeners share ports (SO_REUSEPORT), so its own bind would not
  // tell a taken port from a free one.
  async _bindInRange ([min, max]) {
    for (let port = min; port <= max && !this.destroyed; port++) {
      if (!(await portFree(port))) continue
      for (const addr of listenAddrs(port)) await this._native.listenOn(addr)
      return
    }
    if (this.destroyed) return
    const err = new Error(`no free port in ${min}..${max}`)
    err.code = 'EADDRINUSE'
    throw err
  }

  _upsertPeer (publicKey) {
    const hex = publicKey.toString('hex')
    let info = this.peers.get(hex)
    if (!info) {
      info = new PeerInfo(this, publicKey)
      this.peers.set(hex, info)
    }
    return info
  }

  _maybeDeletePeer (info) {
    const hex = info.publicKey.toString('hex')
    if (info.explicit || info.banned || this._sockets.has(hex)) return
    if (this.peers.get(hex) === info) this.peers.delete(hex)
  }

  _onconnection (ev) {
    const socket = new SwarmSocket(ev.connection, this.keyPair.publicKey)
    if (this.destroyed) {
      socket.on('error', noop)
      socket.destroy()
      return
    }
    const hex = ev.remote.toString('hex')
    const info = this._upsertPeer(ev.remote)
    info.client = info.client || ev.client
    info.proven = true
    info.tried = true
    info.attempts = 0
    for (const t of ev.topics) info._topic(t)
    const side = ev.client || ev.explicit ? this.stats.connects.client : this.stats.connects.server
    side.opened++
    this.connections.add(socket)
    this._sockets.set(hex, socket)
    socket.on('close', () => {
      side.closed++
      this.connections.delete(socket)
      if (this._sockets.get(hex) === socket) this._sockets.delete(hex)
      this._maybeDeletePeer(info)
      this._update()
    })
    this.emit('connection', socket, info)
  }

  _ondisconnected (ev) {
    const hex = ev.remote.toString('hex')
    // swarmplex extension: the connection (session) to `remote` really ended.
    if (!this.destroyed) {
      const err = new Error(ev.message)
      err.code = ev.code
      this.emit('disconnection', ev.remote, err)
    }
    const socket = this._sockets.get(hex)
    if (socket) socket._sessionEnded(SwarmSocket.connError(ev.code, 'connection closed: ' + ev.message))
  }

  join (topic, opts = {}) {
    if (this.destroyed) throw new Error('Swarm destroyed')
    topic = key32(topic, 'topic')
    opts = checkObject(opts, 'join options')
    const server = optBool(opts, 'server', true)
    const client = optBool(opts, 'client', true)
    const hex = topic.toString('hex')
    let d = this._discovery.get(hex)
    if (!d || d.destroyed) {
      d = new PeerDiscovery(this, Buffer.from(topic))
      this._discovery.set(hex, d)
    }
    const session = d.session({ server, client })
    // Like Hyperswarm, joining as a server also listens (announces this peer under its own
    // key, so others can joinPeer it).
    if (server && !this.listening) this.listen().catch(noop)
    return session
  }

  async leave (topic) {
    topic = key32(topic, 'topic')
    const d = this._discovery.get(topic.toString('hex'))
    if (d) await d.destroy()
  }

  joinPeer (publicKey) {
    publicKey = key32(publicKey, 'public key')
    if (this.destroyed) throw new Error('Swarm destroyed')
    if (publicKey.equals(this.keyPair.publicKey)) return
    const info = this._upsertPeer(Buffer.from(publicKey))
    info.explicit = true
    this.explicitPeers.add(info)
    this._queue.push(info)
    while (this._queue.length > 0) {
      const next = this._queue.shift()
      call(() => this._native.joinPeer(next.publicKey))
    }
  }

  leavePeer (publicKey) {
    publicKey = key32(publicKey, 'public key')
    const hex = publicKey.toString('hex')
    const info = this.peers.get(hex)
    if (!this.destroyed) call(() => this._native.leavePeer(publicKey))
    if (info) {
      info.explicit = false
      this.explicitPeers.delete(info)
      this._maybeDeletePeer(info)
      // The peer is gone from `peers` (nothing else kept it): an internal value changed.
      if (!this.peers.has(hex)) this._update()
    }
  }

  // ---- swarmplex extensions (used by swarmplex/p2plex and swarmplex/peersockets) ----

  // Delivers topic messages sent to `topic` as 'message' (remotePublicKey, topic, data) events.
  joinMessages (topic) {
    if (typeof topic !== 'string') throw new TypeError(`message topic must be a string, got ${describe(topic)}`)
    if (this.destroyed) throw new Error('Swarm destroyed')
    call(() => this._native.joinMessages(topic))
  }

  leaveMessages (topic) {
    if (typeof topic !== 'string') throw new TypeError(`message topic must be a string, got ${describe(topic)}`)
    if (!this.destroyed) call(() => this._native.leaveMessages(topic))
  }

  // Sends one message over the open connection to `remotePublicKey`; resolves once sent. It is
  // delivered only if the remote joined `topic` (joinMessages); the sender cannot tell.
  async sendMessage (remotePublicKey, topic, data) {
    remotePublicKey = key32(remotePublicKey, 'public key')
    if (typeof topic !== 'string') throw new TypeError(`message topic must be a string, got ${describe(topic)}`)
    if (!isBytes(data)) throw new TypeError(`message must be a Buffer, got ${describe(data)}`)
    const socket = this._sockets.get(remotePublicKey.toString('hex'))
    if (!socket || socket.destroyed) {
      const err = new Error('not connected to that peer')
      err.code = 'closed'
      throw err
    }
    try {
      await socket._native.sendMessage(topic, toBuffer(data))
    } catch (err) {
      throw toError(err)
    }
  }

  // The open socket to `remotePublicKey`, or null.
  connectionOf (remotePublicKey) {
    const s = this._sockets.get(key32(remotePublicKey, 'public key').toString('hex'))
    return s && !s.destroyed ? s : null
  }

  // swarmplex extension: whether others can dial us ('unknown' | 'public' | 'private'), behind a
  // symmetric NAT or not, the addresses we advertise, and the relays we hold a reservation on.
  async reachability () {
    try {
      const r = await this._native.reachability()
      return { state: r.state, symmetric: r.symmetric, external: r.external, relays: r.relays }
    } catch (err) {
      throw toError(err)
    }
  }

  status (topic) {
    topic = key32(topic, 'topic')
    return this._discovery.get(topic.toString('hex')) || null
  }

  topics () {
    return this._discovery.values()
  }

  listen () {
    if (this.destroyed) throw new Error('Swarm destroyed')
    if (!this.listening) {
      this.listening = Promise.resolve(this._bound)
        .then(() => this._native.listen())
        .then(() => undefined, (err) => { throw toError(err) })
    }
    return this.listening
  }

  // Resolves when every topic finished its round and every peer found was connected (its
  // 'connection' event already emitted) or given up.
  async flush () {
    if (this.destroyed) return false
    try {
      await this._native.flush()
    } catch (err) {
      if (this.destroyed) return false
      throw toError(err)
    }
    return true
  }

  async suspend () {
    if (this.suspended || this.destroyed) return
    this.suspended = true
    const closing = [...this.connections].map((s) => new Promise((resolve) => s.once('close', resolve)))
    call(() => this._native.suspend())
    await Promise.all(closing)
  }

  async resume () {
    if (!this.suspended || this.destroyed) return
    this.suspended = false
    call(() => this._native.resume())
  }

  async clear () {
    for (const d of [...this._discovery.values()]) await d.destroy()
  }

  destroy () {
    if (this._destroying) return this._destroying
    this.destroyed = true
    clearInterval(this._keepAlive)
    for (const d of this._discovery.values()) d.destroyed = true
    this._discovery.clear()
    for (const socket of [...this.connections]) socket.destroy()
    this._destroying = this._native.destroy().then(() => {
      this.connecting = 0
      this.emit('close')
    }, (err) => { throw toError(err) })
    return this._destroying
  }
}

// Whether both TCP and UDP `port` can be bound on every interface right now.
async function portFree (port) {
  const tcp = await new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)))
  })
  if (!tcp) return false
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4')
    sock.once('error', () => { sock.close(); resolve(false) })
    sock.bind({ port, address: '0.0.0.0', exclusive: true }, () => sock.close(() => resolve(true)))
  })
}

function noop () {}

module.exports = Hyperswarm
module.exports.Hyperswarm = Hyperswarm
module.exports.Swarm = Hyperswarm
module.exports.PeerInfo = PeerInfo
module.exports.PeerDiscovery = PeerDiscovery
module.exports.PeerDiscoverySession = PeerDiscoverySession
module.exports.SwarmSocket = SwarmSocket
