#!/usr/bin/env node
// swarmplex vs Hyperswarm, same run, each on its own local testnet, loopback only.
//   node bench/compare.js [--mib 256] [--trials 9] [--rtts 2000]
// Re-execs itself under ../scripts/netns-run (a loopback-only network namespace) unless
// SWARMPLEX_IN_NETNS is set. Build the addon in release first: `npm run build:release`.
'use strict'
const crypto = require('crypto')

const { enterNetns, arg } = require('./netns')
enterNetns(__filename)
const MIB = Number(arg('mib', 256))
const TRIALS = Number(arg('trials', 9))
const RTTS = Number(arg('rtts', 2000))
const CHUNK = 64 * 1024

const impls = {
  swarmplex: {
    Swarm: require('..'),
    async testnet () {
      const t = await require('../testnet').createTestnet(3)
      return { bootstrap: t.bootstrap, destroy: () => t.destroy() }
    }
  },
  hyperswarm: {
    Swarm: require('hyperswarm'),
    async testnet () {
      const t = await require('hyperdht/testnet')(3, { host: '127.0.0.1' })
      return { bootstrap: t.bootstrap, destroy: () => t.destroy() }
    }
  }
}

function median (xs) {
  const s = xs.slice().sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function withTimeout (p, ms, what) {
  let t
  return Promise.race([p, new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error('timeout: ' + what)), ms) })]).finally(() => clearTimeout(t))
}

// A connected server/client pair on a fresh topic; resolves with the time from the client's
// join() to its 'connection' event (ms) and both sockets.
async function connectPair (impl, bootstrap) {
  const server = new impl.Swarm({ bootstrap })
  const client = new impl.Swarm({ bootstrap })
  const topic = crypto.randomBytes(32)
  const sConn = new Promise((resolve) => server.once('connection', (s) => { s.on('error', () => {}); resolve(s) }))
  await server.join(topic, { server: true, client: false }).flushed()
  const cConn = new Promise((resolve) => client.once('connection', (s) => { s.on('error', () => {}); resolve(s) }))
  const t0 = process.hrtime.bigint()
  client.join(topic, { server: false, client: true })
  const c = await withTimeout(cConn, 30000, 'connect')
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const s = await withTimeout(sConn, 30000, 'server connect')
  return { server, client, s, c, ms, destroy: () => Promise.all([client.destroy(), server.destroy()]) }
}

async function connectTime (impl, bootstrap) {
  const times = []
  for (let i = 0; i < TRIALS; i++) {
    const p = await connectPair(impl, bootstrap)
    times.push(p.ms)
    await p.destroy()
  }
  return median(times)
}

async function throughput (impl, bootstrap) {
  const p = await connectPair(impl, bootstrap)
  const total = MIB * 1024 * 1024
  const chunk = crypto.randomBytes(CHUNK)
  const done = new Promise((resolve, reject) => {
    let n = 0
    p.s.on('data', (d) => { n += d.length; if (n >= total) resolve(n) })
    p.s.on('error', reject)
  })
  const t0 = process.hrtime.bigint()
  let sent = 0
  await new Promise((resolve) => {
    function more () {
      while (sent < total) {
        sent += CHUNK
        if (!p.c.write(chunk)) { p.c.once('drain', more); return }
      }
      resolve()
    }
    more()
  })
  await withTimeout(done, 300000, 'throughput')
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  await p.destroy()
  return MIB / secs
}

async function roundTrip (impl, bootstrap) {
  const p = await connectPair(impl, bootstrap)
  const msg = crypto.randomBytes(1024)
  p.s.on('data', (d) => p.s.write(d)) // echo
  let pending = null
  let got = 0
  p.c.on('data', (d) => { got += d.length; if (got >= 1024 && pending) { got -= 1024; const r = pending; pending = null; r() } })
  const once = () => new Promise((resolve) => { pending = resolve; p.c.write(msg) })
  for (let i = 0; i < 100; i++) await once() // warm-up
  const times = []
  for (let i = 0; i < RTTS; i++) {
    const t0 = process.hrtime.bigint()
    await once()
    times.push(Number(process.hrtime.bigint() - t0) / 1e3)
  }
  await p.destroy()
  return median(times)
}

async function runImpl (name) {
  const impl = impls[name]
  const tn = await impl.testnet()
  try {
    const connect = await connectTime(impl, tn.bootstrap)
    const mibs = await throughput(impl, tn.bootstrap)
    const rtt = await roundTrip(impl, tn.bootstrap)
    return { connect, mibs, rtt }
  } finally {
    await tn.destroy()
  }
}

;(async () => {
  const native = require('../lib/native')
  void native
  console.log(`swarmplex vs hyperswarm — node ${process.version}, ${require('os').cpus().length} cpus, loopback netns`)
  console.log(`connect: median of ${TRIALS} (client join -> 'connection'); throughput: ${MIB} MiB one stream, ${CHUNK / 1024} KiB writes; rtt: median of ${RTTS} 1 KiB echoes\n`)
  const results = {}
  for (const name of ['swarmplex', 'hyperswarm']) {
    results[name] = await runImpl(name)
    const r = results[name]
    console.log(`${name.padEnd(11)} connect ${r.connect.toFixed(1).padStart(8)} ms   throughput ${r.mibs.toFixed(1).padStart(8)} MiB/s   rtt ${r.rtt.toFixed(0).padStart(6)} µs`)
  }
  const a = results.swarmplex
  const b = results.hyperswarm
  console.log('\nratios (swarmplex / hyperswarm):')
  console.log(`  connect time   ${(a.connect / b.connect).toFixed(2)}x  (lower is better)`)
  console.log(`  throughput     ${(a.mibs / b.mibs).toFixed(2)}x  (higher is better; goal >= 2x)`)
  console.log(`  1 KiB rtt      ${(a.rtt / b.rtt).toFixed(2)}x  (lower is better)`)
  process.exit(0)
})().catch((err) => { console.error(err); process.exit(1) })
