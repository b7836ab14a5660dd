'use strict'
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawn } = require('child_process')
const { Swarm, createTestnet, setup, randomTopic, withTimeout, run } = require('./helpers')

// Spawns `node file`, resolves once every pattern matched its output, then kills it.
function runUntil (file, env, patterns, ms = 30000) {
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env } })
  let out = ''
  let err = ''
  const done = new Promise((resolve, reject) => {
    const check = () => { if (patterns.every((p) => p.test(out))) resolve() }
    child.stdout.on('data', (d) => { out += d; check() })
    child.stderr.on('data', (d) => { err += d })
    child.on('exit', (code) => reject(new Error(`${path.basename(file)} exited (${code}) early:\n${out}\n${err}`)))
  })
  return {
    child,
    output: () => ({ out, err }),
    done: withTimeout(done, ms, `${path.basename(file)} output`).finally(() => {
      child.removeAllListeners('exit')
    })
  }
}

function kill (child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', resolve)
    child.kill('SIGKILL')
  })
}

test('bad input throws TypeError at once', async (t) => {
  const s = new Swarm({ bootstrap: [] })
  t.after(() => s.destroy())
  const bad = [Buffer.alloc(31), Buffer.alloc(33), 'topic', null, undefined, 42, {}]
  for (const b of bad) {
    assert.throws(() => s.join(b), TypeError)
    assert.throws(() => s.joinPeer(b), TypeError)
    assert.throws(() => s.leavePeer(b), TypeError)
    assert.throws(() => s.status(b), TypeError)
    await assert.rejects(s.leave(b), TypeError)
  }
  assert.throws(() => s.join(randomTopic(), { server: 'yes' }), TypeError)
  assert.throws(() => s.join(randomTopic(), 'opts'), TypeError)
  assert.throws(() => new Swarm({ seed: Buffer.alloc(31) }), TypeError)
  assert.throws(() => new Swarm({ seed: 'seed' }), TypeError)
  assert.throws(() => new Swarm({ keyPair: { publicKey: Buffer.alloc(32), secretKey: Buffer.alloc(10) } }), TypeError)
  assert.throws(() => new Swarm({ keyPair: 'kp' }), TypeError)
  assert.throws(() => new Swarm({ maxPeers: -1 }), TypeError)
  assert.throws(() => new Swarm({ maxPeers: '3' }), TypeError)
  assert.throws(() => new Swarm({ firewall: true }), TypeError)
  assert.throws(() => new Swarm({ bootstrap: 'x' }), TypeError)
  assert.throws(() => new Swarm({ bootstrap: [1] }), TypeError)
  assert.throws(() => new Swarm({ network: 5 }), TypeError)
  assert.throws(() => new Swarm({ mdns: 'no' }), TypeError)
  assert.throws(() => new Swarm({ port: 'x' }), TypeError)
  // An unknown option is ignored with a warning, as Hyperswarm ignores it (hyperswarm-compat.test.js).
  assert.throws(() => new Swarm('opts'), TypeError)
  await assert.rejects(createTestnet(0), TypeError)
})

test('engine errors carry err.code from the engine\'s ErrorKind', () => {
  assert.throws(() => new Swarm({ bootstrap: ['not a multiaddr'] }), (e) => e.code === 'invalid_input' && !(e instanceof TypeError))
  assert.throws(() => new Swarm({ bootstrap: [], network: 'a/b' }), (e) => e.code === 'invalid_input')
})

test('seed gives the same key pair as Hyperswarm (libsodium seed layout)', async (t) => {
  const seed = Buffer.alloc(32).fill(4)
  const s = new Swarm({ seed, bootstrap: [] })
  t.after(() => s.destroy())
  // The key the peopleswarm README prints for this seed.
  assert.strictEqual(s.keyPair.publicKey.toString('hex'), 'ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c')
  const crypto = require('hypercore-crypto') // Hyperswarm's own key derivation
  const theirs = crypto.keyPair(seed)
  assert.deepStrictEqual(s.keyPair.publicKey, theirs.publicKey)
  assert.deepStrictEqual(s.keyPair.secretKey, theirs.secretKey)
  const s2 = new Swarm({ keyPair: theirs, bootstrap: [] })
  t.after(() => s2.destroy())
  assert.deepStrictEqual(s2.keyPair.publicKey, theirs.publicKey)
  const random = new Swarm({ bootstrap: [] })
  t.after(() => random.destroy())
  assert.strictEqual(random.keyPair.publicKey.length, 32)
  assert.strictEqual(random.keyPair.secretKey.length, 64)
  assert.notDeepStrictEqual(random.keyPair.publicKey, s.keyPair.publicKey)
})

test('a Rust panic becomes a JS error, the process lives on', { timeout: 30000 }, async () => {
  const r = await run(path.join(__dirname, 'fixtures', 'panic.js'))
  assert.strictEqual(r.code, 0, r.err)
  assert.match(r.out, /caught: internal panic in swarmplex: deliberate test panic/)
  assert.match(r.out, /alive/)
})

test('SWARMPLEX_LOG writes the engine\'s logs to stderr; without it the engine is silent', { timeout: 60000 }, async () => {
  const script = path.join(__dirname, 'fixtures', 'exit.js')
  const logged = await run(script, { SWARMPLEX_LOG: 'swarmplex=debug' }, 20000)
  assert.strictEqual(logged.code, 0, logged.err)
  assert.match(logged.err, /DEBUG.*swarmplex::state::peers.*session active/)
  const quiet = await run(script, { SWARMPLEX_LOG: '' }, 20000)
  assert.strictEqual(quiet.code, 0, quiet.err)
  assert.doesNotMatch(quiet.err, /swarmplex::/)
})

test('a script that destroys its swarms exits by itself', { timeout: 30000 }, async () => {
  const r = await run(path.join(__dirname, 'fixtures', 'exit.js'), {}, 20000)
  assert.strictEqual(r.code, 0, r.err)
  assert.match(r.out, /destroyed/)
})

test('peopleswarm README example runs (two processes, seeds 4 and 5)', { timeout: 60000 }, async (t) => {
  const testnet = await createTestnet(3)
  t.after(() => testnet.destroy())
  const env = { SWARMPLEX_BOOTSTRAP: testnet.bootstrap.join(',') }
  const one = runUntil(path.join(__dirname, 'examples', 'peopleswarm-swarm1.js'), env, [/swarm 1 got a server connection:/, /new connection/])
  const two = runUntil(path.join(__dirname, 'examples', 'peopleswarm-swarm2.js'), env, [/swarm 2 got a client connection:/])
  let o1, o2
  try {
    await Promise.all([one.done, two.done])
    // Snapshot before killing: killing one peer makes the other see a reset, as it should.
    o1 = one.output()
    o2 = two.output()
  } finally {
    await Promise.all([kill(one.child), kill(two.child)])
  }
  assert.match(o1.out, /SWARM 1 KEYPAIR: \{\s+publicKey: <Buffer ca 93 ac 17 05/)
  assert.match(o2.out, /SWARM 2 KEYPAIR:/)
  // swarm 1 sees swarm 2's key, swarm 2 sees swarm 1's key (ca93ac…).
  assert.match(o2.out, /swarm 2 got a client connection: <Buffer ca 93 ac 17/)
  assert.strictEqual((o1.out.match(/got a server connection/g) || []).length, 1)
  assert.strictEqual((o2.out.match(/got a client connection/g) || []).length, 1)
  // The README's log shows a duplicate-connection reset loop; we must not have one.
  assert.doesNotMatch(o1.err + o2.err, /CONN ERR/)
})

test('p2pswarm README example runs', { timeout: 60000 }, async (t) => {
  const testnet = await createTestnet(3)
  t.after(() => testnet.destroy())
  const env = { SWARMPLEX_BOOTSTRAP: testnet.bootstrap.join(',') }
  const ex = runUntil(path.join(__dirname, 'examples', 'p2pswarm.js'), env, [/client got message: this is a server connection/])
  try {
    await ex.done
  } finally {
    await kill(ex.child)
  }
})

test('listen() resolves and the swarm is reachable by key', { timeout: 60000 }, async (t) => {
  const { create } = await setup(t)
  const a = create()
  await a.listen()
  assert.strictEqual(a.listen(), a.listening)
  await a.listen()
})

test('index.d.ts, testnet.d.ts, p2plex.d.ts and peersockets.d.ts type-check typical programs (tsc --noEmit --strict)', { timeout: 120000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = await withTimeout(new Promise((resolve) => {
    const child = spawn(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--types', 'node', path.join(__dirname, 'types-check.ts'), path.join(__dirname, 'types-check-plex.ts')], { cwd: path.join(__dirname, '..') })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('exit', (code) => resolve({ code, out }))
  }), 110000, 'tsc')
  assert.strictEqual(r.code, 0, r.out)
})
