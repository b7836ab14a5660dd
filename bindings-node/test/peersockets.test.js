'use strict'
// swarmplex/peersockets: README example, send / broadcast / leave / close, and a peer that did
// not join a topic gets nothing. Also runs examples/node/{p2plex,peersockets}.js.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const os = require('os')
const path = require('path')
const Peersockets = require('swarmplex/peersockets')
const { setup, createTestnet, withTimeout, randomTopic, run, waitFor } = require('./helpers')

const T = { timeout: 90000 }
const W = 20000

// A queue of received messages with bounded waits.
function inbox () {
  const items = []
  const waiters = []
  return {
    items,
    push (remoteKey, msg) {
      items.push({ remoteKey, msg })
      const w = waiters.shift()
      if (w) w()
    },
    async next (n) {
      while (items.length < n) {
        await withTimeout(new Promise((resolve) => waiters.push(resolve)), W, `message ${n}`)
      }
      return items[n - 1]
    }
  }
}

test('README example prints what it says', T, async (t) => {
  const testnet = await createTestnet(3)
  t.after(() => testnet.destroy())
  const r = await run(path.join(__dirname, 'examples', 'peersockets-readme.js'), { SWARMPLEX_BOOTSTRAP: testnet.bootstrap.join(',') }, 60000)
  assert.strictEqual(r.code, 0, r.err)
  assert.match(r.out, /^I got message hello! from [0-9a-f]{64}\n$/)
})

test('send, broadcast, close, leave; a peer that did not join gets nothing', T, async (t) => {
  const { create } = await setup(t)
  const a = create({ mdns: false })
  const b = create({ mdns: false })
  const c = create({ mdns: false })
  const topic = randomTopic()
  await b.join(topic, { server: true, client: false }).flushed()
  await c.join(topic, { server: true, client: false }).flushed()
  a.join(topic, { server: false, client: true })
  await a.flush()
  assert.strictEqual(a.connections.size, 2)
  const A = a.keyPair.publicKey
  const B = b.keyPair.publicKey
  const C = c.keyPair.publicKey

  // c never joins 'chat': count every message its swarm delivers for it (there must be none).
  const cRaw = []
  c.on('message', (remote, name) => cRaw.push(name))

  const sa = new Peersockets(a)
  const sb = new Peersockets(b)
  const sc = new Peersockets(c)
  const bChat = inbox()
  const bProbe = inbox()
  const cProbe = inbox()
  let bClosed = 0
  const hb = sb.join('chat', { onmessage: (k, m) => bChat.push(k, m), onclose: () => bClosed++ })
  sb.join('probe', { onmessage: (k, m) => bProbe.push(k, m) })
  sc.join('probe', { onmessage: (k, m) => cProbe.push(k, m) })
  const ha = sa.join('chat')
  const pa = sa.join('probe')

  // send: a string and a Buffer
  await ha.send(B, 'hello b')
  let m = await bChat.next(1)
  assert.ok(m.remoteKey.equals(A))
  assert.ok(Buffer.isBuffer(m.msg))
  assert.strictEqual(m.msg.toString(), 'hello b')
  await ha.send(B, Buffer.from([0, 1, 2, 255]))
  m = await bChat.next(2)
  assert.deepStrictEqual([...m.msg], [0, 1, 2, 255])

  // send to c, which did not join 'chat': the send succeeds, c delivers nothing.
  await ha.send(C, 'not for you')
  // broadcast: goes to both connected peers; only b joined, so only b delivers it.
  assert.strictEqual(await ha.broadcast('to all'), 2)
  m = await bChat.next(3)
  assert.strictEqual(m.msg.toString(), 'to all')
  // A later message on a topic c did join arrives: by then the earlier ones were handled.
  // (The handle and the swarm's own 'message' event are told apart: wait for both.)
  const cProbeRaw = waitFor(c, 'message', (remote, name) => name === 'peersockets/probe', W)
  await pa.send(C, 'probe c')
  assert.strictEqual((await cProbe.next(1)).msg.toString(), 'probe c')
  await cProbeRaw
  assert.deepStrictEqual(cRaw, ['peersockets/probe'])

  // leave: onclose runs, and b no longer delivers 'chat'.
  sb.leave('chat')
  assert.strictEqual(bClosed, 1)
  assert.strictEqual(hb.closed, true)
  await ha.send(B, 'after leave')
  await pa.send(B, 'probe b')
  assert.strictEqual((await bProbe.next(1)).msg.toString(), 'probe b')
  assert.strictEqual(bChat.items.length, 3)

  // close: the handle stops, other handles of the topic go on.
  const h1 = inbox()
  const h2 = inbox()
  const k1 = sb.join('again', { onmessage: (k, x) => h1.push(k, x) })
  sb.join('again', { onmessage: (k, x) => h2.push(k, x) })
  k1.close()
  await sa.join('again').send(B, 'x')
  assert.strictEqual((await h2.next(1)).msg.toString(), 'x')
  assert.strictEqual(h1.items.length, 0)

  // leave() with no name leaves everything.
  sb.leave()
  assert.strictEqual(sb.topics.size, 0)
  // Errors: not connected, bad input.
  await assert.rejects(ha.send(Buffer.alloc(32, 9), 'x'), (err) => err.code === 'closed')
  assert.throws(() => sa.join(''), TypeError)
  assert.throws(() => sa.join('x'.repeat(1024)), TypeError) // with its prefix, over the engine's 1024
  assert.throws(() => ha.send(B, 42), TypeError)
})

test('examples/node/p2plex.js and peersockets.js run against their own testnet', { timeout: 120000 }, async (t) => {
  // The examples require('swarmplex/...'): resolve it to this package through NODE_PATH.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmplex-examples-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'swarmplex'))
  const env = { NODE_PATH: dir }
  const examples = path.join(__dirname, '..', '..', 'examples', 'node')
  const p = await run(path.join(examples, 'p2plex.js'), env, 60000)
  assert.strictEqual(p.code, 0, p.err)
  assert.match(p.out, /bob got back: HELLO ALICE\nconnection closed once its last stream ended\n/)
  const s = await run(path.join(examples, 'peersockets.js'), env, 60000)
  assert.strictEqual(s.code, 0, s.err)
  assert.match(s.out, /^b got "hi b!" from [0-9a-f]{8}… \(a: [0-9a-f]{8}…\)\n$/)
  const [from, a] = /from ([0-9a-f]{8})… \(a: ([0-9a-f]{8})/.exec(s.out).slice(1)
  assert.strictEqual(from, a)
})
