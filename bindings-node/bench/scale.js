#!/usr/bin/env node
// Busy topics: N swarms in one process join one topic (client and server) at the same moment,
// swarmplex and Hyperswarm in the same run, each on its own local testnet (10 DHT nodes, in a
// child process so its memory and CPU are not counted). Loopback only.
//   node bench/scale.js [--sizes 20,50,100] [--limit 30]
// For each (implementation, N), in a fresh process: time until every swarm has a connection,
// time to full mesh (N(N-1)/2 links, each seen from both sides), share of links at 10 s, CPU
// seconds until the mesh (or the limit), RSS per swarm and per connection endpoint.
// Re-execs itself under ../scripts/netns-run unless SWARMPLEX_IN_NETNS is set. Build the addon
// in release first: `npm run build:release`. `make bench-scale` does both.
'use strict'
const crypto = require('crypto')
const { spawn } = require('child_process')

const { enterNetns, arg } = require('./netns')
enterNetns(__filename)

const IMPLS = {
  swarmplex: {
    Swarm: () => require('..'),
    testnet: async (n) => {
      const t = await require('../testnet').createTestnet(n)
      return { bootstrap: t.bootstrap, destroy: () => t.destroy() }
    }
  },
  hyperswarm: {
    Swarm: () => require('hyperswarm'),
    testnet: async (n) => {
      const t = await require('hyperdht/testnet')(n, { host: '127.0.0.1' })
      return { bootstrap: t.bootstrap, destroy: () => t.destroy() }
    }
  }
}

// --testnet IMPL N: runs a testnet and prints its bootstrap list as JSON, until killed.
async function serveTestnet (impl, n) {
  const t = await IMPLS[impl].testnet(n)
  process.stdout.write(JSON.stringify(t.bootstrap) + '\n')
  process.stdin.resume()
  process.stdin.on('end', async () => { await t.destroy(); process.exit(0) })
}

// --one IMPL N LIMIT BOOTSTRAP: one measurement, printed as JSON.
async function measure (impl, n, limitS, bootstrap) {
  const Swarm = IMPLS[impl].Swarm()
  const topic = crypto.randomBytes(32)
  const rssBefore = process.memoryUsage().rss
  const swarms = []
  for (let i = 0; i < n; i++) swarms.push(new Swarm({ bootstrap, maxPeers: 2 * n, mdns: false }))
  const full = n * (n - 1) // connection endpoints in a full mesh
  let endpoints = 0
  let alone = n
  let allHaveOne = null
  let mesh = null
  let at10 = null
  const cpuStart = process.cpuUsage()
  const start = process.hrtime.bigint()
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9
  let resolveDone
  const done = new Promise((resolve) => { resolveDone = resolve })
  for (const s of swarms) {
    let mine = 0
    s.on('connection', (socket) => {
      socket.on('error', () => {})
      endpoints++
      if (mine++ === 0 && --alone === 0) allHaveOne = elapsed()
      if (endpoints === full) { mesh = elapsed(); resolveDone() }
    })
  }
  for (const s of swarms) s.join(topic, { server: true, client: true })
  const ten = setTimeout(() => { at10 = endpoints / full }, 10000)
  const limit = setTimeout(resolveDone, limitS * 1000)
  await done
  clearTimeout(limit)
  const cpu = process.cpuUsage(cpuStart)
  const rss = process.memoryUsage().rss - rssBefore
  if (at10 === null) at10 = endpoints / full
  clearTimeout(ten)
  const result = {
    impl,
    n,
    allHaveOne,
    mesh,
    linksAt10: at10,
    linksAtEnd: endpoints / full,
    cpuS: (cpu.user + cpu.system) / 1e6,
    rssPerSwarmMB: rss / n / 1048576,
    rssPerEndpointKB: endpoints ? rss / endpoints / 1024 : null
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  await Promise.race([Promise.all(swarms.map((s) => s.destroy())), new Promise((resolve) => setTimeout(resolve, 5000))])
  process.exit(0)
}

function child (args) {
  return spawn(process.execPath, [__filename, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env })
}

function firstLine (proc) {
  return new Promise((resolve, reject) => {
    let buf = ''
    proc.stdout.on('data', (d) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i !== -1) resolve(JSON.parse(buf.slice(0, i)))
    })
    proc.on('exit', (code) => reject(new Error('child exited with ' + code)))
  })
}

async function main () {
  const sizes = String(arg('sizes', '20,50,100')).split(',').map(Number)
  const limit = Number(arg('limit', 30))
  const rows = []
  for (const n of sizes) {
    for (const impl of Object.keys(IMPLS)) {
      const net = child(['--testnet', impl, '10'])
      const bootstrap = await firstLine(net)
      const one = child(['--one', impl, String(n), String(limit), JSON.stringify(bootstrap)])
      const r = await firstLine(one)
      await new Promise((resolve) => one.on('exit', resolve))
      net.stdin.end()
      await new Promise((resolve) => net.on('exit', resolve))
      console.error(JSON.stringify(r))
      rows.push(r)
    }
  }
  const s = (x, d = 1) => (x === null || x === undefined ? '—' : x.toFixed(d))
  const pct = (x) => (x === null ? '—' : (100 * x).toFixed(0) + ' %')
  console.log(`| N | impl | every swarm connected (s) | full mesh (s) | links at 10 s | links at end (${limit} s limit) | CPU s | RSS/swarm MB | RSS/endpoint KB |`)
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    console.log(`| ${r.n} | ${r.impl} | ${s(r.allHaveOne, 2)} | ${s(r.mesh, 2)} | ${pct(r.linksAt10)} | ${pct(r.linksAtEnd)} | ${s(r.cpuS)} | ${s(r.rssPerSwarmMB, 2)} | ${s(r.rssPerEndpointKB, 0)} |`)
  }
}

const mode = process.argv[2]
if (mode === '--testnet') serveTestnet(process.argv[3], Number(process.argv[4]))
else if (mode === '--one') measure(process.argv[3], Number(process.argv[4]), Number(process.argv[5]), JSON.parse(process.argv[6]))
else main().catch((err) => { console.error(err); process.exit(1) })
