#!/usr/bin/env node
// Builds the native addon from source with @napi-rs/cli into native/swarmplex.node.
//   node scripts/build.js [--release] [--if-missing]
// Shares build artifacts with plain cargo: one target triple (napi always passes --target) and a
// target dir outside the clone, unless the caller already chose them.
'use strict'
const { spawnSync, execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')
const out = path.join(root, 'native', 'swarmplex.node')
const args = process.argv.slice(2)
const release = args.includes('--release')

if (args.includes('--if-missing') && fs.existsSync(out) && !process.env.SWARMPLEX_REBUILD) {
  console.log('swarmplex: native/swarmplex.node exists; skipping build (npm run build rebuilds)')
  process.exit(0)
}

const env = { ...process.env }
if (!env.CARGO_BUILD_TARGET) {
  env.CARGO_BUILD_TARGET = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
}
if (!env.CARGO_TARGET_DIR) env.CARGO_TARGET_DIR = path.join(os.homedir(), '.cache', 'swarmplex-target')

const cli = require.resolve('@napi-rs/cli/package.json')
const bin = path.join(path.dirname(cli), require(cli).bin.napi || require(cli).bin)
const napiArgs = [
  bin, 'build',
  '--manifest-path', path.join(root, 'Cargo.toml'),
  '--package-json-path', path.join(root, 'package.json'),
  '--target', env.CARGO_BUILD_TARGET,
  '--output-dir', path.join(root, 'native'),
  // Generated typings of the raw addon: kept out of the tree (index.d.ts is the public API).
  '--dts', path.join('..', 'node_modules', '.swarmplex-native.d.ts'),
  '--no-dts-header'
]
if (release) napiArgs.push('--release')
console.log('swarmplex: building the addon (' + (release ? 'release' : 'debug') + ') with', env.CARGO_BUILD_TARGET, 'in', env.CARGO_TARGET_DIR)
const r = spawnSync(process.execPath, napiArgs, { cwd: root, env, stdio: 'inherit' })
if (r.status !== 0) process.exit(r.status || 1)
if (!fs.existsSync(out)) {
  console.error('swarmplex: build finished but', out, 'is missing')
  process.exit(1)
}
