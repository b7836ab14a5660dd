'use strict'
// swarmplex/peer-exchange: the README example, a three-node exchange where A knows only B and
// reaches C through B (relayed when C accepts nothing, direct when it does), websocket and
// unaccept, network isolation, and bad input. All on 127.0.0.1 inside the test's loopback-only namespace.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const path = require('path')
const { spawn } = require('child_process')
const Exchange = require('swarmplex/peer-exchange')
const { waitFor } = require('./helpers')

const T = { timeout: 90000 }

// Exchanges that are always closed when test `t` ends.
function factory (t) {
  const all = []
  t.after(() => Promise.all(all.map((ex) => ex.close())))
  return (id = 'net') => {
    const ex = new Exchange(id)
    ex.on('peer', (p) => p.on('error', () => {}))
    all.push(ex)
    return ex
  }
}

// Sends `n` random bytes from `a` to `b` and back the other way; compares SHA-256s.
async function bothWays (a, b, n) {
  for (const [from, to] of [[a, b], [b, a]]) {
    const data = crypto.randomBytes(n)
    const got = []
    let size = 0
    const done = new Promise((resolve, reject) => {
      to.on('data', function ondata (c) {
        got.push(c)
        size += c.length
        if (size >= n) { to.off('data', ondata); resolve() }
      })
      to.once('error', reject)
    })
    from.write(data)
    await done
    assert.strictEqual(crypto.createHash('sha256').update(Buffer.concat(got)).digest('hex'),
      crypto.createHash('sha256').update(data).digest('hex'))
  }
}

// The peer of `ex` whose remote key is `key`, now or once its 'peer' event comes: the remote's
// end of a connection may activate a moment after ours.
async function seen (ex, key) {
  const open = ex.peers.find((p) => p.remotePublicKey.equals(key))
  if (open) return open
  const [p] = await waitFor(ex, 'peer', (p) => p.remotePublicKey.equals(key))
  return p
}

test('README usage example prints what it says', T, async (t) => {
  // Its two initial peers: W accepts websocket, B accepts tcp; C (accepting nothing) knows both,
  // so whichever the example asks offers C, reached through the asker's relay.
  const make = factory(t)
  const [w, b, c] = [make('some-network-id'), make('some-network-id'), make('some-network-id')]
  const { port: wsPort } = await w.accept('websocket', { host: '127.0.0.1' })
  const { port } = await b.accept('tcp', { host: '127.0.0.1' })
  await c.connect('websocket', '127.0.0.1', { port: wsPort })
  await c.connect('tcp', '127.0.0.1', { port })
  const file = path.join(__dirname, 'examples', 'peer-exchange-readme.js')
  const env = { ...process.env, PEX_HOST: '127.0.0.1', PEX_PORT: String(port), PEX_WS_PORT: String(wsPort) }
  const child = spawn(process.execPath, [file], { env })
  t.after(() => child.kill())
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  let err = ''
  child.stderr.on('data', (d) => { err += d })
  const printed = () => /a random peer sent us a new peer/.test(out) && /connected to peer: websocket/.test(out)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no new peer printed; stdout: ' + out + ' stderr: ' + err)), 60000)
    child.stdout.on('data', () => { if (printed()) { clearTimeout(timer); resolve() } })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)) })
  })
  const lines = out.trim().split('\n')
  assert.ok(lines.includes('connected to peer: websocket 127.0.0.1'), out)
  assert.ok(lines.includes('connected to peer: tcp 127.0.0.1'), out)
  const circuit = String.raw`relay \/ip4\/127\.0\.0\.1\/tcp\/\d+(\/ws)?\/p2p\/\w+\/p2p-circuit\/p2p\/\w+`
  assert.match(out, new RegExp(`^connected to peer: ${circuit}$`, 'm'))
  assert.match(out, new RegExp(`^a random peer sent us a new peer: ${circuit}$`, 'm'))
})

test('websocket carries a peer; unaccept refuses new peers and keeps the connected ones', T, async (t) => {
  const make = factory(t)
  const [a, b, c] = [make(), make(), make()]
  const { port, multiaddr } = await b.accept('websocket', { host: '127.0.0.1' })
  assert.match(multiaddr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws$/)
  const seenByB = waitFor(b, 'peer', (p) => p.remotePublicKey.equals(a.publicKey))
  const ab = await a.connect('websocket', '127.0.0.1', { port })
  assert.strictEqual(ab.socket.transport, 'websocket')
  assert.strictEqual(ab.remoteAddress, '127.0.0.1')
  assert.strictEqual(ab.remotePort, port)
  const [ba] = await seenByB
  assert.strictEqual(ba.transport, 'websocket')
  await bothWays(ab, ba, 256 * 1024)

  await new Promise((resolve, reject) => b.unaccept('websocket', (err) => err ? reject(err) : resolve()))
  await assert.rejects(c.connect('websocket', '127.0.0.1', { port }), (err) => err.code === 'connect')
  await bothWays(ab, ba, 64 * 1024)
  await assert.rejects(b.unaccept('websocket'), (err) => err.code === 'invalid_input' && /not accepting on websocket/.test(err.message))
  assert.throws(() => b.unaccept('webrtc'), TypeError)
})

test('three nodes: A knows only B and reaches C through B (C accepts nothing: relayed)', T, async (t) => {
  const make = factory(t)
  const [a, b, c] = [make(), make(), make()]
  const { port } = await b.accept('tcp', { host: '127.0.0.1' })
  const { port: qport } = await b.accept('quic', { host: '127.0.0.1' })
  const ab = await a.connect('tcp', '127.0.0.1', { port })
  assert.strictEqual(ab.socket.transport, 'tcp')
  assert.strictEqual(ab.remoteAddress, '127.0.0.1')
  assert.strictEqual(ab.remotePort, port)
  assert.ok(ab.remotePublicKey.equals(b.publicKey))
  const cb = await new Promise((resolve, reject) => c.connect('quic', '127.0.0.1', { port: qport }, (err, p) => err ? reject(err) : resolve(p)))
  assert.strictEqual(cb.socket.transport, 'quic')
  await seen(b, a.publicKey)
  await seen(b, c.publicKey)
  assert.strictEqual(b.peers.length, 2)

  const seenByC = waitFor(c, 'peer', (p) => p.remotePublicKey.equals(a.publicKey))
  const ac = await new Promise((resolve, reject) => a.getNewPeer((err, p) => err ? reject(err) : resolve(p)))
  assert.ok(ac.remotePublicKey.equals(c.publicKey), 'B offered its only other peer')
  assert.strictEqual(ac.transport, 'relay')
  const [ca] = await seenByC
  assert.strictEqual(ca.transport, 'relay')
  assert.deepStrictEqual(ca.handshakeHash, ac.handshakeHash)
  assert.strictEqual(a.peers.length, 2)
  await bothWays(ac, ca, 256 * 1024)

  // peer.getNewPeer asks that peer: B has nobody A does not know already.
  await assert.rejects(ab.getNewPeer(), (err) => err.code === 'connect')
})

test('an introduced peer that accepts connections is reached directly', T, async (t) => {
  const make = factory(t)
  const [a, b, c] = [make(), make(), make()]
  const { port } = await b.accept('tcp', { host: '127.0.0.1' })
  await a.accept('tcp', { host: '127.0.0.1' })
  await c.accept('quic', { host: '127.0.0.1' })
  const ab = await a.connect('tcp', '127.0.0.1', { port })
  await c.connect('tcp', '127.0.0.1', { port })
  const ac = await ab.getNewPeer()
  assert.ok(ac.remotePublicKey.equals(c.publicKey))
  assert.notStrictEqual(ac.transport, 'relay')
  const ca = await seen(c, a.publicKey)
  await bothWays(ac, ca, 1024 * 1024)
})

test('nodes only peer within one network id; bad input is a TypeError; no peers is an error', T, async (t) => {
  const make = factory(t)
  const one = make('network one')
  const two = make('network two')
  const { port } = await one.accept('tcp', { host: '127.0.0.1' })
  await assert.rejects(two.connect('tcp', '127.0.0.1', { port }), (err) => err.code === 'connect' && /not in this network/.test(err.message))
  assert.strictEqual(one.peers.length, 0)
  await assert.rejects(two.getNewPeer(), (err) => err.code === 'connect' && /not connected to any peers/.test(err.message))

  assert.throws(() => new Exchange(''), TypeError)
  assert.throws(() => new Exchange(42), TypeError)
  assert.throws(() => one.accept('webrtc', { port: 8000 }), TypeError)
  assert.throws(() => one.accept('tcp', { port: 70000 }), TypeError)
  assert.throws(() => one.connect('tcp', 'not a host!', { port: 1 }), TypeError)
  assert.throws(() => one.connect('tcp', '127.0.0.1', {}), TypeError)
  assert.deepStrictEqual(Exchange.transports, ['tcp', 'quic', 'websocket'])
  assert.strictEqual(one.id, 'network one')
})

test('relaying is bounded: a cut circuit errors the socket, and the session ends with relay_limit', T, async (t) => {
  const make = factory(t)
  const [a, b, c] = [make(), make(), make()]
  const { port } = await b.accept('tcp', { host: '127.0.0.1' })
  await a.connect('tcp', '127.0.0.1', { port })
  await c.connect('tcp', '127.0.0.1', { port })
  const seenByC = waitFor(c, 'peer', (p) => p.remotePublicKey.equals(a.publicKey))
  const ended = waitFor(c.swarm, 'disconnection', (remote) => remote.equals(a.publicKey))
  const ac = await a.getNewPeer()
  assert.strictEqual(ac.transport, 'relay')
  const [ca] = await seenByC
  // 4 MiB cannot cross a relay that carries 1 MiB per circuit (the default bound): the reader
  // must see an error, never a clean end.
  let got = 0
  const outcome = new Promise((resolve) => {
    ca.on('data', (d) => { got += d.length })
    ca.once('end', () => resolve(null))
    ca.once('error', resolve)
  })
  ac.write(Buffer.alloc(4 << 20, 7))
  const err = await outcome
  assert.ok(err instanceof Error, `read ${got} bytes and then a clean end: bytes were lost silently`)
  assert.ok(got < 4 << 20, `${got} bytes crossed`)
  // The reader's side, whose inbound half the relay cut mid-frame, learns why (the writer's side
  // may instead see its control stream end cleanly: 'closed').
  const [, reason] = await ended
  assert.strictEqual(reason.code, 'relay_limit', reason.message)
})
