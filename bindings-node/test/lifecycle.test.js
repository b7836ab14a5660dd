'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { setup, waitFor, until, randomTopic } = require('./helpers')

const T = { timeout: 60000 }

async function serverAndClient (create, sOpts = {}, cOpts = {}) {
  const server = create(sOpts)
  const client = create(cOpts)
  const topic = randomTopic()
  await server.join(topic, { server: true, client: false }).flushed()
  return { server, client, topic }
}

test('the client reconnects after the server destroys the socket', T, async (t) => {
  const { create } = await setup(t)
  const { server, client, topic } = await serverAndClient(create)
  // The server destroys its first socket. The client may or may not have emitted that
  // connection yet (its side of a session starts a moment after the server's); either way it
  // must come back with a new one.
  const destroyed = waitFor(server, 'connection').then(([socket]) => {
    socket.destroy()
    return socket.handshakeHash
  })
  const hashes = []
  client.on('connection', (socket) => hashes.push(socket.handshakeHash))
  client.join(topic, { server: false, client: true })
  const first = await destroyed
  const [c2, info] = await waitFor(client, 'connection', (s) => !s.handshakeHash.equals(first))
  assert.ok(hashes.length <= 2, 'at most the destroyed connection and the new one')
  assert.deepStrictEqual(info.publicKey, server.keyPair.publicKey)
  assert.deepStrictEqual(hashes[hashes.length - 1], c2.handshakeHash)
  assert.strictEqual(client.connections.size, 1)
})

test('a banned peer does not reconnect, and ban is emitted', T, async (t) => {
  const { create } = await setup(t)
  const { server, client, topic } = await serverAndClient(create)
  let count = 0
  client.on('connection', () => count++)
  const d = client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(count, 1)
  const info = client.peers.get(server.keyPair.publicKey.toString('hex'))
  const banned = waitFor(client, 'ban')
  const [socket] = [...client.connections]
  const closed = waitFor(socket, 'close')
  info.ban()
  const [bannedInfo] = await banned
  assert.strictEqual(bannedInfo, info)
  assert.strictEqual(info.banned, true)
  await closed
  // A new lookup round finds the server again; flush waits for it: still no connection.
  await d.refresh()
  await client.flush()
  assert.strictEqual(count, 1)
  assert.strictEqual(client.connections.size, 0)
})

test('joinPeer connects and reconnects; joinPeer(self) is a no-op; leavePeer stops', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  await a.listen()
  b.joinPeer(b.keyPair.publicKey) // self: no-op
  assert.strictEqual(b.peers.size, 0)
  const first = waitFor(b, 'connection')
  b.joinPeer(a.keyPair.publicKey)
  const [[s1, info]] = await Promise.all([first])
  assert.deepStrictEqual(s1.remotePublicKey, a.keyPair.publicKey)
  assert.strictEqual(info.explicit, true)
  assert.ok(b.explicitPeers.has(info))
  // a drops the connection: b reconnects on its own.
  const again = waitFor(b, 'connection', (s) => s !== s1)
  const [aSide] = await until(a, ['connection'], () => a.connections.size === 1).then(() => [...a.connections])
  aSide.destroy()
  const [[s2]] = await Promise.all([again])
  assert.notDeepStrictEqual(s2.handshakeHash, s1.handshakeHash)
  // leavePeer: the connection stays, but after it drops nobody redials.
  b.leavePeer(a.keyPair.publicKey)
  assert.strictEqual(b.connections.size, 1)
  let more = 0
  b.on('connection', () => more++)
  const closed = waitFor(s2, 'close')
  await until(a, ['connection'], () => a.connections.size === 1)
  for (const s of a.connections) s.destroy()
  await closed
  await b.flush()
  assert.strictEqual(more, 0)
  assert.strictEqual(b.connections.size, 0)
})

for (const side of ['server', 'client']) {
  test(`firewall on the ${side} rejects, bans, and is asked once`, T, async (t) => {
    const { create } = await setup(t)
    const asked = []
    const firewall = (key) => { asked.push(key.toString('hex')); return true }
    const { server, client, topic } = await serverAndClient(create, side === 'server' ? { firewall } : {}, side === 'client' ? { firewall } : {})
    const guarded = side === 'server' ? server : client
    const other = side === 'server' ? client : server
    let conns = 0
    guarded.on('connection', () => conns++)
    const ban = waitFor(guarded, 'ban')
    const d = client.join(topic, { server: false, client: true })
    const [info] = await ban
    assert.deepStrictEqual(info.publicKey, other.keyPair.publicKey)
    assert.strictEqual(info.banned, true)
    await client.flush()
    // Another round: the banned peer is not asked again.
    await d.refresh()
    await client.flush()
    assert.strictEqual(conns, 0)
    assert.strictEqual(guarded.connections.size, 0)
    assert.deepStrictEqual(asked, [other.keyPair.publicKey.toString('hex')])
  })
}

test('firewall that accepts lets the peer in and is asked once', T, async (t) => {
  const { create } = await setup(t)
  const asked = []
  const { client, topic } = await serverAndClient(create, { firewall: (key) => { asked.push(key); return false } })
  client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(client.connections.size, 1)
  assert.strictEqual(asked.length, 1)
})

test('flush() resolves with maxPeers: 1', T, async (t) => {
  const { create } = await setup(t)
  const topic = randomTopic()
  const s1 = create()
  const s2 = create()
  await s1.join(topic, { server: true, client: false }).flushed()
  await s2.join(topic, { server: true, client: false }).flushed()
  const client = create({ maxPeers: 1 })
  client.join(topic, { server: false, client: true })
  assert.strictEqual(await client.flush(), true)
  assert.strictEqual(client.connections.size, 1)
})

test('connecting goes 0 -> 1 -> 0 through update', T, async (t) => {
  const { create } = await setup(t)
  const { client, topic } = await serverAndClient(create)
  const seen = [client.connecting]
  client.on('update', () => { if (seen[seen.length - 1] !== client.connecting) seen.push(client.connecting) })
  client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(client.connections.size, 1)
  assert.deepStrictEqual(seen, [0, 1, 0])
})

test('suspend closes connections and resume gives a second one', T, async (t) => {
  const { create } = await setup(t)
  const { client, topic } = await serverAndClient(create)
  const conns = []
  client.on('connection', (s) => conns.push(s))
  client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(conns.length, 1)
  await client.suspend()
  assert.strictEqual(client.suspended, true)
  assert.strictEqual(client.connections.size, 0)
  const second = waitFor(client, 'connection')
  await client.resume()
  const [[s2]] = await Promise.all([second])
  assert.notStrictEqual(s2, conns[0])
  assert.strictEqual(client.connections.size, 1)
})

test('destroy closes the remote side at once and is idempotent', T, async (t) => {
  const { create } = await setup(t)
  const { server, client, topic } = await serverAndClient(create)
  client.join(topic, { server: false, client: true })
  await client.flush()
  await until(server, ['connection'], () => server.connections.size === 1)
  const [s] = [...server.connections]
  const closed = waitFor(s, 'close')
  const p = client.destroy()
  assert.strictEqual(client.destroy(), p)
  await p
  assert.strictEqual(client.destroyed, true)
  assert.strictEqual(client.connections.size, 0)
  await closed
  assert.throws(() => client.join(randomTopic()), /destroyed/)
})
