'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { setup, waitFor, until, collect, randomTopic } = require('./helpers')

const T = { timeout: 60000 }

test('one server, one client: data both ways', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  const topic = randomTopic()

  const serverConn = waitFor(server, 'connection')
  const clientConn = waitFor(client, 'connection')
  await server.join(topic, { server: true, client: false }).flushed()
  client.join(topic, { server: false, client: true })
  await client.flush()

  const [[s, sInfo], [c, cInfo]] = await Promise.all([serverConn, clientConn])
  assert.deepStrictEqual(s.remotePublicKey, client.keyPair.publicKey)
  assert.deepStrictEqual(c.remotePublicKey, server.keyPair.publicKey)
  assert.deepStrictEqual(s.publicKey, server.keyPair.publicKey)
  assert.deepStrictEqual(c.publicKey, client.keyPair.publicKey)
  assert.strictEqual(s.handshakeHash.length, 32)
  assert.deepStrictEqual(s.handshakeHash, c.handshakeHash)
  assert.notStrictEqual(s.isInitiator, c.isInitiator)
  assert.deepStrictEqual(cInfo.publicKey, server.keyPair.publicKey)
  assert.strictEqual(cInfo.topics.length, 1)
  assert.deepStrictEqual(cInfo.topics[0], topic)
  assert.strictEqual(cInfo.client, true)
  assert.strictEqual(sInfo.topics.length, 0)
  assert.strictEqual(server.connections.size, 1)
  assert.strictEqual(client.connections.size, 1)
  assert.ok(server.peers.has(client.keyPair.publicKey.toString('hex')))
  assert.ok(client.peers.get(server.keyPair.publicKey.toString('hex')) === cInfo)
  // No default 'error' listener on a new socket (the helper adds exactly one).
  assert.strictEqual(s.listenerCount('error'), 1)

  const fromServer = collect(c)
  const fromClient = collect(s)
  s.end('hello from server')
  c.end('hello from client')
  assert.strictEqual((await fromServer).toString(), 'hello from server')
  assert.strictEqual((await fromClient).toString(), 'hello from client')
})

test('two servers: the client connects to both', T, async (t) => {
  const { create } = await setup(t)
  const s1 = create()
  const s2 = create()
  const client = create()
  const topic = randomTopic()
  await s1.join(topic, { server: true, client: false }).flushed()
  await s2.join(topic, { server: true, client: false }).flushed()
  const seen = new Set()
  client.on('connection', (socket, info) => seen.add(info.publicKey.toString('hex')))
  client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(client.connections.size, 2)
  assert.deepStrictEqual([...seen].sort(), [s1, s2].map((s) => s.keyPair.publicKey.toString('hex')).sort())
  await until(s1, ['connection'], () => s1.connections.size === 1)
  await until(s2, ['connection'], () => s2.connections.size === 1)
})

test('dedup: both in client+server mode keep exactly one connection', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const topic = randomTopic()
  let aCount = 0
  let bCount = 0
  a.on('connection', () => aCount++)
  b.on('connection', () => bCount++)
  await a.join(topic).flushed()
  await b.join(topic).flushed()
  await a.flush()
  await b.flush()
  await until(a, ['connection'], () => a.connections.size === 1)
  await until(b, ['connection'], () => b.connections.size === 1)
  // A second round on both sides must not create a new connection (no reset loop).
  a.status(topic).refresh()
  b.status(topic).refresh()
  await a.flush()
  await b.flush()
  assert.strictEqual(a.connections.size, 1)
  assert.strictEqual(b.connections.size, 1)
  assert.strictEqual(aCount, 1)
  assert.strictEqual(bCount, 1)
  const [sa] = [...a.connections]
  const [sb] = [...b.connections]
  assert.deepStrictEqual(sa.handshakeHash, sb.handshakeHash)
  // And the one connection works.
  const got = waitFor(sb, 'data')
  sa.write('ping')
  assert.strictEqual((await got)[0].toString(), 'ping')
})

test('ten swarms on one topic reach exactly 9 connections each', { timeout: 120000 }, async (t) => {
  const { create } = await setup(t)
  const topic = randomTopic()
  const swarms = []
  for (let i = 0; i < 10; i++) swarms.push(create())
  for (const s of swarms) await s.join(topic).flushed()
  await Promise.all(swarms.map((s) => until(s, ['connection', 'update'], () => s.connections.size >= 9, 60000, '9 connections')))
  await Promise.all(swarms.map((s) => s.flush()))
  for (const s of swarms) {
    assert.strictEqual(s.connections.size, 9)
    const remotes = new Set([...s.connections].map((c) => c.remotePublicKey.toString('hex')))
    assert.strictEqual(remotes.size, 9)
    assert.ok(!remotes.has(s.keyPair.publicKey.toString('hex')))
  }
})

test('two topics share one connection and peerInfo.topics has both', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  const t1 = randomTopic()
  const t2 = randomTopic()
  await server.join(t1, { server: true, client: false }).flushed()
  await server.join(t2, { server: true, client: false }).flushed()
  let count = 0
  let info
  client.on('connection', (s, i) => { count++; info = i })
  client.join(t1, { server: false, client: true })
  await client.flush()
  assert.strictEqual(count, 1)
  const topicEvent = waitFor(info, 'topic')
  client.join(t2, { server: false, client: true })
  await client.flush()
  await topicEvent
  assert.strictEqual(count, 1)
  assert.strictEqual(client.connections.size, 1)
  assert.strictEqual(info.topics.length, 2)
  const hex = info.topics.map((x) => x.toString('hex')).sort()
  assert.deepStrictEqual(hex, [t1, t2].map((x) => x.toString('hex')).sort())
})

test('leave keeps existing connections', T, async (t) => {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  const topic = randomTopic()
  await server.join(topic, { server: true, client: false }).flushed()
  client.join(topic, { server: false, client: true })
  await client.flush()
  assert.strictEqual(client.connections.size, 1, 'connected after the first flush')
  await client.leave(topic)
  await server.leave(topic)
  assert.strictEqual(client.status(topic), null)
  assert.strictEqual([...client.topics()].length, 0)
  await client.flush()
  assert.strictEqual(client.connections.size, 1, 'still connected after leave')
  const [c] = [...client.connections]
  // Each side reports its end when that end is active; the follower's comes a moment after the
  // leader's, so the server may not have its socket yet.
  const [s] = server.connections.size ? [...server.connections] : await waitFor(server, 'connection')
  const got = waitFor(s, 'data')
  c.write('still here')
  assert.strictEqual((await got)[0].toString(), 'still here')
})

test('status, topics() and PeerDiscovery fields', T, async (t) => {
  const { create } = await setup(t)
  const s = create()
  const topic = randomTopic()
  const d = s.join(topic, { server: false, client: true })
  assert.deepStrictEqual(d.topic, topic)
  assert.strictEqual(d.isServer, false)
  assert.strictEqual(d.isClient, true)
  assert.strictEqual(s.status(topic), d)
  assert.deepStrictEqual([...s.topics()], [d])
  await d.refresh({ server: true, client: true })
  assert.strictEqual(d.isServer, true)
  await d.flushed()
  await d.destroy()
  assert.strictEqual(d.destroyed, true)
  assert.strictEqual(s.status(topic), null)
})
