'use strict'
// Behaviour that Hyperswarm 4.17's own test suite relies on (issue 14), each checked here on
// real sockets over a local testnet.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const path = require('path')
const { Swarm, setup, waitFor, until, randomTopic, run } = require('./helpers')

const T = { timeout: 60000 }

async function pair (create, sOpts = {}, cOpts = {}) {
  const server = create(sOpts)
  const client = create(cOpts)
  const topic = randomTopic()
  const sConn = waitFor(server, 'connection')
  await server.join(topic, { server: true, client: false }).flushed()
  const cConn = waitFor(client, 'connection')
  client.join(topic, { server: false, client: true })
  const [[s, sInfo], [c, cInfo]] = await Promise.all([sConn, cConn])
  return { server, client, s, c, sInfo, cInfo, topic }
}

test('end() on both sides closes both sockets without anyone reading, and joinPeer reconnects', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  await b.listen()
  const firstA = waitFor(a, 'connection')
  const firstB = waitFor(b, 'connection')
  a.joinPeer(b.keyPair.publicKey)
  const [[sa], [sb]] = await Promise.all([firstA, firstB])
  // No 'data' listener, no read(): as with Hyperswarm's streamx sockets, 'end' and 'close'
  // still come once both halves ended.
  const closed = Promise.all([waitFor(sa, 'close'), waitFor(sb, 'close')])
  const secondA = waitFor(a, 'connection', (s) => s !== sa, 30000)
  sa.end()
  sb.end()
  await closed
  assert.strictEqual(sa.readableEnded && sb.readableEnded, true)
  assert.strictEqual(a.connections.has(sa), false)
  // The connection closed with the socket: a (joinPeer) connects again.
  const [again] = await secondA
  assert.notDeepStrictEqual(again.handshakeHash, sa.handshakeHash)
})

test('a socket that ended both ways but holds unread data stays open until it is read', T, async (t) => {
  const { create } = await setup(t)
  const { s, c } = await pair(create)
  const got = waitFor(s, 'readable')
  c.write('unread')
  await got
  const cClosed = waitFor(c, 'close')
  const sEnd = waitFor(s, 'end')
  const sClosed = waitFor(s, 'close')
  s.end()
  c.end()
  // c has nothing buffered: it closes, and the connection with it. s still holds 'unread', so
  // it has neither ended nor closed.
  await cClosed
  await until(s, ['finish'], () => s.writableFinished)
  assert.strictEqual(s.readableEnded, false)
  assert.strictEqual(s.destroyed, false)
  assert.strictEqual(s.read().toString(), 'unread')
  await sEnd
  await sClosed
})

test('destroy(): the remote socket errors with ECONNRESET (engine kind kept in err.kind)', T, async (t) => {
  const { create } = await setup(t)
  const { s, c } = await pair(create)
  const err = waitFor(s, 'error')
  const closed = waitFor(s, 'close')
  c.destroy()
  const [e] = await err
  await closed
  assert.strictEqual(e.code, 'ECONNRESET')
  assert.ok(['reset', 'closed'].includes(e.kind), `kind ${e.kind}`)
})

test('flush() resolves true once written bytes reached the transport; false once destroyed', T, async (t) => {
  const { create } = await setup(t)
  const { s, c } = await pair(create)
  // More than the engine takes before write() waits (1 MiB), so part sits in Node's buffer.
  const data = crypto.randomBytes(3 * 1024 * 1024)
  const chunks = []
  let n = 0
  s.on('data', (d) => { chunks.push(d); n += d.length })
  const all = until(s, ['data'], () => n === data.length, 30000, 'all bytes')
  c.write(data)
  assert.ok(c.writableLength > 0, 'something is buffered before flush()')
  assert.strictEqual(await c.flush(), true)
  assert.strictEqual(c.writableLength, 0)
  await all
  assert.ok(Buffer.concat(chunks).equals(data))
  c.end()
  assert.strictEqual(await c.flush(), true, 'flush after end() reports the end was sent')
  s.destroy()
  await waitFor(s, 'close')
  assert.strictEqual(await s.flush(), false)
})

test('sockets emit open after the connection event', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  const topic = randomTopic()
  const opened = new Promise((resolve) => server.on('connection', (socket) => socket.once('open', resolve)))
  await server.join(topic, { server: true, client: false }).flushed()
  client.join(topic, { server: false, client: true })
  await opened
})

test('swarm.stats counts updates, client/server connections and bans', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  let updates = 0
  client.on('update', () => updates++)
  const topic = randomTopic()
  await server.join(topic, { server: true, client: false }).flushed()
  const cConn = waitFor(client, 'connection')
  const sConn = waitFor(server, 'connection')
  client.join(topic, { server: false, client: true })
  const [[c], [s]] = await Promise.all([cConn, sConn])
  assert.deepStrictEqual(client.stats.connects, { client: { opened: 1, closed: 0, attempted: 1 }, server: { opened: 0, closed: 0 } })
  assert.deepStrictEqual(server.stats.connects, { client: { opened: 0, closed: 0, attempted: 0 }, server: { opened: 1, closed: 0 } })
  // closed is counted before the user's 'close' listeners run.
  const cClosed = new Promise((resolve) => c.on('close', () => resolve(client.stats.connects.client.closed)))
  const sClosed = new Promise((resolve) => s.on('close', () => resolve(server.stats.connects.server.closed)))
  c.end()
  s.end()
  assert.strictEqual(await cClosed, 1)
  assert.strictEqual(await sClosed, 1)
  assert.ok(updates > 0)
  assert.strictEqual(client.stats.updates, updates)
  assert.strictEqual(client.stats.bannedPeers, 0)
})

test('a firewall ban emits ban with Error(Peer is firewalled) and counts in bannedPeers', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create({ firewall: () => true })
  const topic = randomTopic()
  await server.join(topic, { server: true, client: false }).flushed()
  const ban = waitFor(client, 'ban')
  client.join(topic, { server: false, client: true })
  const [info, err] = await ban
  assert.deepStrictEqual(info.publicKey, server.keyPair.publicKey)
  assert.ok(err instanceof Error)
  assert.strictEqual(err.message, 'Peer is firewalled')
  assert.strictEqual(client.stats.bannedPeers, 1)
})

test('peerInfo.ban() emits ban with Error(Peer is banned)', T, async (t) => {
  const { create } = await setup(t)
  const { client, cInfo } = await pair(create)
  const ban = waitFor(client, 'ban')
  cInfo.ban()
  const [info, err] = await ban
  assert.strictEqual(info, cInfo)
  assert.strictEqual(err.message, 'Peer is banned')
  assert.strictEqual(client.stats.bannedPeers, 1)
})

test('Hyperswarm and HyperDHT options are accepted; unknown ones warn; bad types still throw', async (t) => {
  const warnings = []
  const onwarning = (w) => { if (w.code === 'SWARMPLEX_UNKNOWN_OPTION') warnings.push(w.message) }
  process.on('warning', onwarning)
  t.after(() => process.off('warning', onwarning))
  const s = new Swarm({
    bootstrap: [],
    handshakeClearWait: 100,
    backoffs: [100, 200, 300, 400],
    jitter: 0,
    maxParallel: 3,
    nodes: [],
    deferRandomPunch: true,
    ephemeral: true,
    nope: 1
  })
  await s.destroy()
  await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on next tick
  assert.deepStrictEqual(warnings, ['unknown Swarm option nope (ignored)'])
  for (const port of ['1', -1, 70000, [5, 1], [1, 2, 3], 1.5]) {
    assert.throws(() => new Swarm({ bootstrap: [], port }), TypeError, `port ${JSON.stringify(port)}`)
  }
  assert.throws(() => new Swarm({ bootstrap: [], port: 1234, listen: [] }), TypeError)
  assert.throws(() => new Swarm({ maxPeers: 'x', handshakeClearWait: 1 }), TypeError)
})

// A port chosen at random, with room for a small range above it.
// Below Linux's ephemeral range (32768–60999), so that no socket of this run bound to port 0
// (the testnet's, the other swarms') can hold it: that made this test fail now and then.
function somePort () {
  return 20000 + crypto.randomInt(12000)
}

test('port: the swarm listens on that port; a range takes its first free port', T, async (t) => {
  const { create } = await setup(t)
  const port = somePort()
  const first = create({ port })
  const second = create({ port: [port, port + 5] })
  const client = create()
  await first.listen()
  await second.listen()
  const ports = new Map()
  client.on('connection', (socket, info) => ports.set(info.publicKey.toString('hex'), socket.remotePort))
  client.joinPeer(first.keyPair.publicKey)
  client.joinPeer(second.keyPair.publicKey)
  await until(client, ['connection'], () => ports.size === 2, 30000, 'two connections')
  assert.strictEqual(ports.get(first.keyPair.publicKey.toString('hex')), port)
  // `port` is taken (QUIC and TCP) by the first swarm: the second binds the next one.
  assert.strictEqual(ports.get(second.keyPair.publicKey.toString('hex')), port + 1)
})

test('joinPeer hands the peer to the engine at once (_queue stays empty); leavePeer that drops a peer emits update', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const other = create()
  a.joinPeer(a.keyPair.publicKey) // self: a no-op
  assert.strictEqual(a._queue.length, 0)
  assert.strictEqual(a.peers.size, 0)
  a.joinPeer(other.keyPair.publicKey)
  assert.strictEqual(a._queue.length, 0)
  assert.strictEqual(a.peers.size, 1)
  let sawEmpty = false
  a.on('update', () => { if (a.peers.size === 0) sawEmpty = true })
  a.leavePeer(other.keyPair.publicKey)
  assert.strictEqual(a.peers.size, 0)
  assert.strictEqual(sawEmpty, true)
})

test('a script holding only a testnet stays alive until the testnet is destroyed', { timeout: 30000 }, async () => {
  const r = await run(path.join(__dirname, 'fixtures', 'testnet-alive.js'), {}, 20000)
  assert.strictEqual(r.code, 0, r.err)
  assert.match(r.out, /destroyed by an unref'd timer/)
})
