'use strict'
// What every benchmark here starts with: run inside a loopback-only network namespace, and read
// `--name value` arguments.
const path = require('path')
const { spawnSync } = require('child_process')

// Re-executes `file` under ../scripts/netns-run (exiting with its status) unless already inside
// one (SWARMPLEX_IN_NETNS=1); returns only inside the namespace.
function enterNetns (file) {
  if (process.env.SWARMPLEX_IN_NETNS === '1') return
  const netns = path.join(__dirname, '..', '..', 'scripts', 'netns-run')
  const r = spawnSync(netns, [process.execPath, file, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status === null ? 1 : r.status)
}

// The value after `--name` on the command line, or `dflt`.
function arg (name, dflt) {
  const i = process.argv.indexOf('--' + name)
  return i === -1 ? dflt : process.argv[i + 1]
}

module.exports = { enterNetns, arg }
