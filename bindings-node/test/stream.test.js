'use strict'
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const { setup, waitFor, until, randomTopic } = require('./helpers')

async function pair (t) {
  const { create } = await setup(t)
  const server = create()
  const client = create()
  const topic = randomTopic()
  const sConn = waitFor(server, 'connection')
  await server.join(topic, { server: true, client: false }).flushed()
  const cConn = waitFor(client, 'connection')
  client.join(topic, { server: false, client: true })
  const [[s], [c]] = await Promise.all([sConn, cConn])
  return { s, c }
}

// Deterministic pseudo-random bytes, chunk by chunk.
function chunkAt (i, size) {
  return crypto.createHash('sha256').update(String(i)).digest().subarray(0, 1)[0] === 256
    ? Buffer.alloc(size)
    : crypto.randomBytes(size)
}

// Writes `total` bytes honouring backpressure; resolves with [sha256 hex, times write() returned
// false, drains seen].
function writeAll (sock, total, chunk = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256')
    let sent = 0
    let falses = 0
    let drains = 0
    sock.on('drain', () => drains++)
    sock.once('error', reject)
    function more () {
      while (sent < total) {
        const n = Math.min(chunk, total - sent)
        const buf = chunkAt(sent, n)
        hash.update(buf)
        sent += n
        if (!sock.write(buf)) {
          falses++
          sock.once('drain', more)
          return
        }
      }
      sock.end(() => resolve([hash.digest('hex'), falses, drains]))
    }
    more()
  })
}

function hashAll (sock) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256')
    let n = 0
    sock.on('data', (d) => { hash.update(d); n += d.length })
    sock.once('end', () => resolve([hash.digest('hex'), n]))
    sock.once('error', reject)
  })
}

test('64 MiB cross a socket byte for byte, with write() backpressure and drain', { timeout: 120000 }, async (t) => {
  const { s, c } = await pair(t)
  const total = 64 * 1024 * 1024
  const received = hashAll(s)
  const [sent, falses, drains] = await writeAll(c, total)
  const [got, n] = await received
  assert.strictEqual(n, total)
  assert.strictEqual(got, sent)
  assert.ok(falses > 0, 'write() returned false at least once')
  assert.ok(drains >= falses, `'drain' followed every false write() (${falses} false, ${drains} drains)`)
})

test('both directions at once, then a clean end on both sides', { timeout: 120000 }, async (t) => {
  const { s, c } = await pair(t)
  const total = 8 * 1024 * 1024
  const r1 = hashAll(s)
  const r2 = hashAll(c)
  const closed = Promise.all([waitFor(s, 'close'), waitFor(c, 'close')])
  const [[h1], [h2]] = await Promise.all([writeAll(c, total), writeAll(s, total)])
  assert.strictEqual((await r1)[0], h1)
  assert.strictEqual((await r2)[0], h2)
  await closed
  assert.strictEqual(s.destroyed && c.destroyed, true)
})

test('reads apply backpressure: a paused reader stalls the writer, then gets everything', { timeout: 120000 }, async (t) => {
  const { s, c } = await pair(t)
  const total = 48 * 1024 * 1024
  let accepted = 0
  const hash = crypto.createHash('sha256')
  let pending = 0
  // The reader does not read: nothing may be pulled from the engine beyond its buffer.
  let stalled
  const stall = new Promise((resolve) => { stalled = resolve })
  let timer = null
  const arm = () => { clearTimeout(timer); timer = setTimeout(stalled, 500) }
  let done
  const finished = new Promise((resolve) => { done = resolve })
  function more () {
    while (accepted < total) {
      const buf = crypto.randomBytes(256 * 1024)
      hash.update(buf)
      accepted += buf.length
      pending++
      const ok = c.write(buf, () => { pending--; arm() })
      if (!ok) { c.once('drain', more); return }
    }
    c.end(done)
  }
  arm()
  more()
  // Observation window: the writer made no progress for 500 ms while the reader was paused.
  await Promise.race([stall, finished])
  clearTimeout(timer)
  assert.ok(pending > 0, 'the writer is stalled by flow control')
  // At most its high-water mark plus the engine's one-chunk read-ahead (256 KiB chunks).
  assert.ok(s.readableLength <= s.readableHighWaterMark + 2 * 256 * 1024, `reader buffered only its high-water mark (${s.readableLength})`)
  const [got, n] = await hashAll(s)
  await finished
  assert.strictEqual(n, total)
  assert.strictEqual(got, hash.digest('hex'))
})

test('destroy() resets: the remote socket closes with an error code', { timeout: 60000 }, async (t) => {
  const { s, c } = await pair(t)
  const err = new Promise((resolve) => s.once('error', resolve))
  const closed = waitFor(s, 'close')
  c.destroy()
  await closed
  const e = await Promise.race([err, Promise.resolve(null)])
  assert.ok(e, 'remote saw an error, not a clean end')
  assert.ok(typeof e.code === 'string' && e.code.length > 0)
  await until(c, ['close'], () => c.destroyed)
})

test('end() half-closes: the other direction keeps working', { timeout: 60000 }, async (t) => {
  const { s, c } = await pair(t)
  const ended = waitFor(s, 'end')
  s.resume()
  c.end()
  await ended
  const got = waitFor(c, 'data')
  s.write('after your end')
  assert.strictEqual((await got)[0].toString(), 'after your end')
  assert.strictEqual(c.writable, false)
  assert.strictEqual(s.writable, true)
})
