'use strict'
// Shared test helpers: a local testnet per test, swarms that are always destroyed, and event
// waits bounded by timeouts (never sleeps used as synchronisation).
const crypto = require('crypto')
const Swarm = require('..')
const { createTestnet } = require('../testnet')

const WAIT_MS = 15000

function randomTopic () {
  return crypto.randomBytes(32)
}

// Creates a testnet and a swarm factory for test `t`; everything is destroyed when it ends.
async function setup (t, size = 3) {
  const testnet = await createTestnet(size)
  const swarms = []
  t.after(async () => {
    await Promise.all(swarms.map((s) => s.destroy()))
    await testnet.destroy()
  })
  function create (opts = {}) {
    const s = new Swarm({ bootstrap: testnet.bootstrap, ...opts })
    // Tests observe sockets explicitly; a reset on teardown must not crash the runner.
    s.on('connection', (socket) => socket.on('error', () => {}))
    swarms.push(s)
    return s
  }
  return { testnet, create }
}

// Resolves with the event's arguments when `pred(...args)` holds; rejects after `ms`.
function waitFor (emitter, event, pred = () => true, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on)
      reject(new Error(`timed out waiting for '${event}'`))
    }, ms)
    function on (...args) {
      if (!pred(...args)) return
      clearTimeout(timer)
      emitter.off(event, on)
      resolve(args)
    }
    emitter.on(event, on)
  })
}

// Resolves once `check()` is true, re-checking on each of `events` of `emitter`.
function until (emitter, events, check, ms = WAIT_MS, what = 'condition') {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      for (const e of events) emitter.off(e, on)
    }
    const on = () => {
      if (check()) {
        done()
        resolve()
      }
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`timed out waiting for ${what}`))
    }, ms)
    for (const e of events) emitter.on(e, on)
    on()
  })
}

// Collects a stream's bytes until it ends.
function collect (stream) {
  return new Promise((resolve, reject) => {
    const chunks = []
    stream.on('data', (c) => chunks.push(c))
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

// Runs `node file` and resolves with { code, signal, out, err }; rejects after `ms`.
function run (file, env = {}, ms = 30000) {
  const { spawn } = require('child_process')
  return withTimeout(new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, ...env } })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }))
  }), ms, `${require('path').basename(file)} exits`)
}

module.exports = { Swarm, createTestnet, setup, waitFor, until, collect, randomTopic, withTimeout, run, WAIT_MS }
