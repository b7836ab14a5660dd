#!/usr/bin/env node
// Packs the npm packages the napi-rs way: the root package `swarmplex` (JS and typings, no
// install script, no Rust) and one package per platform holding the addon.
//   node scripts/pack.js --out DIR [PLATFORM=FILE.node ...]
// Each PLATFORM=FILE (e.g. linux-x64-gnu=/path/libswarmplex_node.so) is copied to
// npm/PLATFORM/swarmplex.PLATFORM.node and npm/PLATFORM is packed into DIR. The root package is
// packed from a staged copy whose package.json gains `optionalDependencies` on every platform
// package under npm/ (the committed package.json has none: an optional dependency on an
// unpublished package makes `npm ci` in this repository fail) and loses the dev-only fields.
// Prints the tarball names. Needs no registry.
'use strict'
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')
const args = process.argv.slice(2)
const outIdx = args.indexOf('--out')
if (outIdx < 0 || !args[outIdx + 1]) {
  console.error('usage: node scripts/pack.js --out DIR [PLATFORM=FILE.node ...]')
  process.exit(2)
}
const out = path.resolve(args[outIdx + 1])
const addons = args.filter((a, i) => i !== outIdx && i !== outIdx + 1)
fs.mkdirSync(out, { recursive: true })

// npm pack DIR into `out`; returns the tarball's file name.
function pack (dir) {
  const json = execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8' })
  return JSON.parse(json)[0].filename
}

const platforms = fs.readdirSync(path.join(root, 'npm')).filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json'))).sort()
const rootPkg = require(path.join(root, 'package.json'))

for (const spec of addons) {
  const [platform, file] = spec.split('=')
  if (!platforms.includes(platform) || !file) throw new Error(`pack.js: bad PLATFORM=FILE ${spec} (platforms: ${platforms.join(', ')})`)
  const dir = path.join(root, 'npm', platform)
  const pkg = require(path.join(dir, 'package.json'))
  if (pkg.version !== rootPkg.version) throw new Error(`pack.js: ${pkg.name} is ${pkg.version}, swarmplex is ${rootPkg.version}`)
  fs.copyFileSync(file, path.join(dir, pkg.main))
  console.log(pack(dir))
}

const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmplex-pack-'))
try {
  const tgz = pack(root)
  execFileSync('tar', ['xzf', path.join(out, tgz), '-C', stage])
  fs.unlinkSync(path.join(out, tgz))
  const staged = path.join(stage, 'package')
  const pkg = JSON.parse(fs.readFileSync(path.join(staged, 'package.json'), 'utf8'))
  delete pkg.devDependencies
  delete pkg.scripts
  pkg.optionalDependencies = Object.fromEntries(platforms.map((p) => [`swarmplex-${p}`, pkg.version]))
  fs.writeFileSync(path.join(staged, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  console.log(pack(staged))
} finally {
  fs.rmSync(stage, { recursive: true, force: true })
}
