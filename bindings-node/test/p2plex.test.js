'use strict'
// swarmplex/p2plex: README example, named streams (16 at once, both directions), 'stream'
// events, shared streams, auto-close and reopen, find by key with timeout/AbortSignal, and no
// duplicate-connection errors whatever announce/lookup both sides use.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const path = require('path')
const { spawn } = require('child_process')
const p2plex = require('swarmplex/p2plex')
const { createTestnet, waitFor, collect, withTimeout, randomTopic } = require('./helpers')

const T = { timeout: 90000 }

// A valid Ed25519 public key nobody uses.
function strangerKey () {
  const { publicKey } = crypto.generateKeyPairSync('ed25519')
  return Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url')
}
const W = 20000

async function setup (t) {
  const testnet = await createTestnet(3)
  const plexes = []
  t.after(async () => {
    await Promise.all(plexes.map((p) => p.destroy()))
    await testnet.destroy()
  })
  const create = (opts = {}) => {
    const p = p2plex({ bootstrap: testnet.bootstrap, mdns: false, ...opts })
    plexes.push(p)
    return p
  }
  return { testnet, create }
}

// The peer `b` sees for `a` once a found it by key (or b's 'connection' for it).
async function connectPair (a, b) {
  const bSide = waitFor(b, 'connection', (p) => p.publicKey.equals(a.publicKey), W)
  const aPeer = await a.findByPublicKey(b.publicKey, { timeout: W })
  const [bPeer] = await bSide
  return [aPeer, bPeer]
}

// Writes `out` and ends, collects what comes back; resolves with the bytes received.
function exchange (stream, out) {
  const got = collect(stream)
  stream.end(out)
  return got
}

test('README usage example prints what it says', T, async (t) => {
  const testnet = await createTestnet(3)
  t.after(() => testnet.destroy())
  const file = path.join(__dirname, 'examples', 'p2plex-readme.js')
  const r = await withTimeout(new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, SWARMPLEX_BOOTSTRAP: testnet.bootstrap.join(',') } })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    child.on('exit', (code) => resolve({ code, out, err }))
  }), 60000, 'README example exits')
  assert.strictEqual(r.code, 0, r.err)
  assert.match(r.out, /^Got data from <Buffer( [0-9a-f]{2}){32}> : Hello World!\n$/)
})

test('16 named streams at once, both directions, bytes intact; then auto-close', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer, bPeer] = await connectPair(a, b)
  assert.strictEqual(aPeer.incoming, !bPeer.incoming)
  assert.ok(a.peers.has(aPeer) && b.peers.has(bPeer))
  const jobs = []
  for (let i = 0; i < 8; i++) {
    // a creates a-i, b receives it; b creates b-i, a receives it. Data flows both ways on each.
    for (const [creator, receiver, id] of [[aPeer, bPeer, `a-${i}`], [bPeer, aPeer, `b-${i}`]]) {
      const up = crypto.randomBytes(100000 + i * 1000)
      const down = crypto.randomBytes(50000 + i)
      const c = creator.createStream(id)
      const r = receiver.receiveStream(id)
      jobs.push(exchange(c, up).then((got) => assert.ok(got.equals(down), `${id} down`)))
      jobs.push(exchange(r, down).then((got) => assert.ok(got.equals(up), `${id} up`)))
    }
  }
  const gone = [waitFor(aPeer, 'disconnected', () => true, W), waitFor(bPeer, 'disconnected', () => true, W)]
  await withTimeout(Promise.all(jobs), 60000, '16 streams')
  // All streams ended both ways on both sides: the connection closes by itself.
  await Promise.all(gone)
  assert.strictEqual(a.peers.size, 0)
  assert.strictEqual(b.peers.size, 0)
})

test("a stream nobody waited for arrives as peer 'stream'; reopen after auto-close", T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  b.on('connection', (peer) => {
    peer.on('stream', (stream, id) => {
      exchange(stream, `echo ${id}`).catch(() => {})
    })
  })
  const [aPeer] = await connectPair(a, b)
  // The connection may close as soon as the engine saw both ends, before `got` resolves.
  const closed = waitFor(aPeer, 'disconnected', () => true, W)
  const got = await exchange(aPeer.createStream('first'), 'x')
  assert.strictEqual(got.toString(), 'echo first')
  await closed
  assert.strictEqual(aPeer.connected, false)
  // A new stream on the same Peer finds b again by key and reconnects transparently.
  const reconnected = waitFor(a, 'connection', (p) => p.publicKey.equals(b.publicKey), W)
  const again = await withTimeout(exchange(aPeer.createStream('second'), 'y'), W, 'reopened stream')
  assert.strictEqual(again.toString(), 'echo second')
  const [newPeer] = await reconnected
  assert.notStrictEqual(newPeer, aPeer) // a new Peer per connection
  // (The new connection may have closed by itself already: both its streams finished.)
  assert.ok(!a.peers.has(aPeer) && (a.peers.has(newPeer) || !newPeer.connected))
})

test("a receiveStream that takes an announced stream first: no 'stream' event, no stale receive", T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer, bPeer] = await connectPair(a, b)
  const announced = []
  bPeer.on('stream', (stream, id) => announced.push(id))
  // The app hears the engine's notice of stream 'x' before p2plex does (its listener runs first)
  // and asks for that stream itself: the stream is already waiting, unclaimed, in the engine.
  let first = null
  b.swarm.prependListener('stream', (remote, name) => {
    if (name === 'x' && first === null) first = bPeer.receiveStream('x')
  })
  const noticed = waitFor(b.swarm, 'stream', (remote, name) => name === 'x', W)
  aPeer.createStream('x').end('first')
  await noticed
  assert.ok(first, 'the app asked for the stream')
  assert.strictEqual((await withTimeout(collect(first), W, 'first stream')).toString(), 'first')
  // The next stream of that name goes to the next receive (not to a receive left over from
  // the notice), and p2plex announced neither.
  const second = bPeer.receiveStream('x')
  aPeer.createStream('x').end('second')
  assert.strictEqual((await withTimeout(collect(second), W, 'second stream')).toString(), 'second')
  assert.deepStrictEqual(announced, [])
})

test("two streams of one id arrive while a receive runs: it takes one, 'stream' announces the other", T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer, bPeer] = await connectPair(a, b)
  const announced = waitFor(bPeer, 'stream', (stream, id) => id === 'x', W)
  let taken = null
  b.swarm.prependListener('stream', (remote, name) => {
    if (name === 'x' && taken === null) taken = bPeer.receiveStream('x')
  })
  const noticed = waitFor(b.swarm, 'stream', (remote, name) => name === 'x', W)
  aPeer.createStream('x').end('one')
  aPeer.createStream('x').end('two')
  await noticed
  const [other] = await announced
  const got = await withTimeout(Promise.all([collect(taken), collect(other)]), W, 'both streams')
  assert.deepStrictEqual(got.map(String).sort(), ['one', 'two'])
})

test('stream ids up to the engine\'s 1024 bytes, as in Python; a longer one is a TypeError', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer, bPeer] = await connectPair(a, b)
  const id = 'é'.repeat(512) // 1024 UTF-8 bytes
  const incoming = bPeer.receiveStream(id)
  aPeer.createStream(id).end('long name')
  assert.strictEqual((await withTimeout(collect(incoming), W, 'stream with a 1024-byte id')).toString(), 'long name')
  assert.throws(() => aPeer.createStream(id + 'x'), TypeError)
  assert.throws(() => bPeer.receiveStream('x'.repeat(1025)), TypeError)
})

test('shared streams: both sides ask, data meets', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer, bPeer] = await connectPair(a, b)
  // Neither side waits for the other's call to complete (the follower's resolves only once the
  // leader asked too).
  const sa = aPeer.createSharedStream('chat')
  const sb = bPeer.createSharedStream('chat')
  const [fromB, fromA] = await withTimeout(Promise.all([exchange(sa, 'from a'), exchange(sb, 'from b')]), W, 'shared stream')
  assert.strictEqual(fromB.toString(), 'from b')
  assert.strictEqual(fromA.toString(), 'from a')
})

test('findByPublicKey: a timeout fires, an AbortSignal cancels', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const nobody = strangerKey()
  const t0 = Date.now()
  await assert.rejects(a.findByPublicKey(nobody, { timeout: 300 }), (err) => err.code === 'ETIMEDOUT' && err.name === 'TimeoutError')
  assert.ok(Date.now() - t0 < 5000)
  const ac = new AbortController()
  const p = a.findByPublicKey(nobody, { signal: ac.signal })
  ac.abort()
  await assert.rejects(p, (err) => err.name === 'AbortError')
  await assert.rejects(a.findByPublicKey(nobody, { signal: AbortSignal.abort() }), (err) => err.name === 'AbortError')
  await assert.rejects(a.findByTopicAndPublicKey(randomTopic(), nobody, { timeout: 200 }), (err) => err.code === 'ETIMEDOUT')
  await assert.rejects(() => a.findByPublicKey(Buffer.alloc(3)), TypeError)
  // 32 bytes that are not an Ed25519 point: refused up front, and the swarm lives on.
  await assert.rejects(a.findByPublicKey(Buffer.alloc(32, 2)), (err) => err.code === 'invalid_input')
  await assert.rejects(a.findByPublicKey(strangerKey(), { timeout: 100 }), (err) => err.code === 'ETIMEDOUT')
})

test('findByTopicAndPublicKey: no duplicate-connection errors whatever both sides use', T, async (t) => {
  const { create } = await setup(t)
  const modes = [
    [{ announce: true, lookup: true }, { announce: true, lookup: true }],
    [{ announce: true, lookup: false }, { announce: false, lookup: true }],
    [{ announce: true, lookup: true }, { announce: false, lookup: true }]
  ]
  for (const [ma, mb] of modes) {
    const a = create({ listenSelf: false })
    const b = create({ listenSelf: false })
    const errors = []
    const counts = { a: 0, b: 0 }
    a.on('connection', (p) => { counts.a++; p.on('error', (e) => errors.push(e)) })
    b.on('connection', (p) => { counts.b++; p.on('error', (e) => errors.push(e)) })
    const topic = randomTopic()
    const [pa, pb] = await withTimeout(Promise.all([
      a.findByTopicAndPublicKey(topic, b.publicKey, { ...ma, timeout: W }),
      b.findByTopicAndPublicKey(topic, a.publicKey, { ...mb, timeout: W })
    ]), W + 5000, 'both found')
    assert.ok(pa.publicKey.equals(b.publicKey) && pb.publicKey.equals(a.publicKey))
    assert.deepStrictEqual(counts, { a: 1, b: 1 })
    const [x, y] = await Promise.all([exchange(pa.createSharedStream('s'), 'A'), exchange(pb.createSharedStream('s'), 'B')])
    assert.strictEqual(x.toString() + y.toString(), 'BA')
    assert.deepStrictEqual(errors, [])
    if (!mb.announce) assert.ok(pb.topics.some((tp) => tp.equals(topic)))
  }
})

test('join resolves after a full lookup; disconnect() resolves when done; destroy()', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const topic = randomTopic()
  await b.join(topic, { announce: true, lookup: false })
  const found = waitFor(a, 'connection', (p) => p.publicKey.equals(b.publicKey), W)
  const seen = waitFor(b, 'connection', () => true, W)
  await a.join(topic)
  const [peer] = await found
  const [bPeer] = await seen
  assert.strictEqual(bPeer.incoming, true)
  assert.strictEqual(peer.incoming, false)
  assert.ok(peer.topics.some((tp) => tp.equals(topic)))
  await a.leave(topic)
  await withTimeout(peer.disconnect(), W, 'disconnect')
  assert.strictEqual(a.peers.has(peer), false)
  assert.ok(Buffer.isBuffer(a.keyPair.secretKey) && a.keyPair.publicKey.equals(a.publicKey))
})

test('keyPair is honoured', T, async (t) => {
  const { create } = await setup(t)
  const Swarm = require('swarmplex')
  const s = new Swarm({ seed: Buffer.alloc(32, 7), mdns: false, bootstrap: [] })
  const kp = s.keyPair
  await s.destroy()
  const a = create({ keyPair: kp })
  assert.ok(a.publicKey.equals(kp.publicKey))
  assert.ok(a.swarm.keyPair.secretKey.equals(kp.secretKey))
})

test('ban() closes the connection; destroy() rejects pending finds', T, async (t) => {
  const { create } = await setup(t)
  const a = create()
  const b = create()
  const [aPeer] = await connectPair(a, b)
  const gone = waitFor(aPeer, 'disconnected', () => true, W)
  aPeer.ban()
  await gone
  const c = create()
  const pending = assert.rejects(c.findByPublicKey(strangerKey()), /destroyed/)
  await c.destroy()
  await pending
})
