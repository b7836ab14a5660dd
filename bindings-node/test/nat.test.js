'use strict'
// Two Node peers behind two NATs meet by topic through one bootstrap node, with nothing else
// configured: namespaces from scripts/nat-lab, the bootstrap node is the CLI's
// `swarmplex bootstrap --network`, each peer a fixtures/nat-peer.js process in its namespace.
// Bytes are compared by SHA-256 both ways. Needs root, iproute2, nftables and the CLI binary
// (test.sh builds it); SWARMPLEX_SKIP_NAT_TESTS=1 skips.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const path = require('path')
const readline = require('readline')
const { spawn, spawnSync } = require('child_process')

const LAB = path.join(__dirname, '..', '..', 'scripts', 'nat-lab')
const PEER = path.join(__dirname, 'fixtures', 'nat-peer.js')
const CLI = process.env.SWARMPLEX_CLI || path.join(
  process.env.CARGO_TARGET_DIR || path.join(require('os').homedir(), '.cache', 'swarmplex-target'),
  process.env.CARGO_BUILD_TARGET || 'x86_64-unknown-linux-gnu', 'debug', 'swarmplex')
const skip = process.env.SWARMPLEX_SKIP_NAT_TESTS ? 'SWARMPLEX_SKIP_NAT_TESTS is set'
  : process.getuid() !== 0 ? 'needs root'
    : spawnSync('nft', ['--version']).status !== 0 ? 'needs nftables' : false
const T = { timeout: 120000, skip }

function pattern (len, s) {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = Number((BigInt(i + s) * 2654435761n) >> 13n) & 0xff
  return b
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex')

// The first line a child prints (or a rejection when it exits first).
function firstLine (child, match = () => true) {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout })
    rl.on('line', (line) => { if (match(line)) { rl.close(); resolve(line) } })
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing`)))
  })
}

async function runPair (t, nat1, nat2) {
  const prefix = `sxn${process.pid}${nat1}${nat2}`
  assert.strictEqual(spawnSync(LAB, ['up', prefix, nat1, nat2], { stdio: 'inherit' }).status, 0)
  const children = []
  t.after(() => {
    for (const c of children) c.kill('SIGKILL')
    spawnSync(LAB, ['down', prefix])
  })
  const inNs = (ns, cmd, args) => {
    const c = spawn('ip', ['netns', 'exec', `${prefix}-${ns}`, cmd, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.push(c)
    return c
  }
  const boot = inNs('inet', CLI, ['bootstrap', '--network', 'natlab'])
  const via = {}
  const rl = readline.createInterface({ input: boot.stdout })
  await new Promise((resolve) => rl.on('line', (line) => {
    for (const ip of ['11.0.1.1', '11.0.2.1']) {
      if (line.startsWith(`/ip4/${ip}/udp/`) && line.includes('/quic-v1/')) via[ip] = line.trim()
    }
    if (via['11.0.1.1'] && via['11.0.2.1']) { rl.close(); resolve() }
  }))
  const topic = `node across ${nat1} x ${nat2}`
  const sizes = { server: [1 << 20, 1], client: [512 << 10, 2] }
  const a = inNs('a', process.execPath, [PEER, 'server', via['11.0.1.1'], topic, ...sizes.server.map(String)])
  const c = inNs('c', process.execPath, [PEER, 'client', via['11.0.2.1'], topic, ...sizes.client.map(String)])
  const [ra, rc] = (await Promise.all([firstLine(a), firstLine(c)])).map((l) => JSON.parse(l))
  for (const p of [a, c]) p.stdin.write('done\n')
  assert.strictEqual(ra.handshakeHash, rc.handshakeHash)
  assert.strictEqual(rc.gotSha256, sha256(pattern(...sizes.server)))
  assert.strictEqual(ra.gotSha256, sha256(pattern(...sizes.client)))
  // The NATed server advertised a relay circuit, never its private address.
  assert.strictEqual(ra.reachability, 'private')
  assert.ok(ra.reachabilityEvents.length >= 1 && ra.reachabilityEvents.every((s) => s === 'private'), ra.reachabilityEvents.join())
  assert.ok(ra.relays >= 1, JSON.stringify(ra))
  assert.ok(ra.external.some((e) => e.includes('/p2p-circuit')), JSON.stringify(ra))
  assert.ok(!ra.external.some((e) => e.includes('/192.168.')), JSON.stringify(ra))
  return [ra, rc]
}

test('Node peers behind port-preserving NATs meet by topic and go direct', T, async (t) => {
  const [a, c] = await runPair(t, 'pp', 'pp')
  assert.strictEqual(a.transport, 'quic')
  assert.ok(a.remoteAddress.startsWith('/ip4/11.0.2.2/'), a.remoteAddress)
  assert.ok(c.remoteAddress.startsWith('/ip4/11.0.1.2/'), c.remoteAddress)
})

test('Node peers behind symmetric NATs meet by topic through the relay', T, async (t) => {
  const [a, c] = await runPair(t, 'sym', 'sym')
  assert.strictEqual(a.transport, 'relay')
  assert.strictEqual(c.transport, 'relay')
  assert.strictEqual(a.relay, c.relay, 'both through the bootstrap node')
  assert.ok(a.relay && a.relay.length === 64)
})
