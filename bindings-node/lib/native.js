'use strict'
// Loads the native addon, in this order (as napi-rs's generated loaders do):
//   1. $SWARMPLEX_NATIVE_PATH or $NAPI_RS_NATIVE_LIBRARY_PATH: an explicit path to a .node file;
//   2. native/swarmplex.node beside this package: the build from source (`npm run build`), which
//      the tests in this repository use;
//   3. the platform package, e.g. swarmplex-linux-x64-gnu: what `npm install swarmplex` brings
//      (an optional dependency of the published package; npm installs only the one whose
//      os/cpu/libc match this machine).
const fs = require('fs')
const path = require('path')

const { version } = require('../package.json')
// The platform packages this version is published for (bindings-node/npm/<platform>/).
const PLATFORMS = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']

function isMusl () {
  // napi-rs's detection: the ldd script names its libc; else glibc reports its version.
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    return !(report?.header?.glibcVersionRuntime)
  }
}

// napi-rs's platform names: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc, …
function platformName () {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function load () {
  const override = process.env.SWARMPLEX_NATIVE_PATH || process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  if (override) return require(path.resolve(override))

  const local = path.join(__dirname, '..', 'native', 'swarmplex.node')
  if (fs.existsSync(local)) return require(local)

  const platform = platformName()
  const pkg = `swarmplex-${platform}`
  let pkgVersion
  try {
    pkgVersion = require(`${pkg}/package.json`).version
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err
    const why = PLATFORMS.includes(platform)
      ? `its native part, the package ${pkg}, is not installed. It is an optional dependency of swarmplex, ` +
        `so npm skips it when it cannot fetch it (or after npm/cli#4828: remove node_modules and ` +
        `package-lock.json and install again), and \`--omit=optional\` or \`--no-optional\` drop it. ` +
        `Install it with: npm install ${pkg}@${version}`
      : `there is no prebuilt native part for ${platform} (prebuilt: ${PLATFORMS.join(', ')})`
    throw new Error(`swarmplex: cannot load on ${platform}: ${why}. ` +
      'Or build the addon from source with Rust (bindings-node/README.md, "Build from source").')
  }
  if (pkgVersion !== version) {
    throw new Error(`swarmplex: ${pkg} is version ${pkgVersion} but swarmplex is ${version}; install ${pkg}@${version}`)
  }
  return require(pkg)
}

let binding
try {
  binding = load()
} catch (err) {
  if (err.message.startsWith('swarmplex:')) throw err
  const e = new Error('swarmplex: the native addon failed to load: ' + err.message)
  e.cause = err
  throw e
}

// Native errors carry their ErrorKind as a "[code] " message prefix: move it into err.code.
function toError (err) {
  if (!(err instanceof Error)) err = new Error(String(err))
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(err.message)
  if (m) {
    err.code = m[1]
    err.message = m[2]
  }
  return err
}

function call (fn) {
  try {
    return fn()
  } catch (err) {
    throw toError(err)
  }
}

module.exports = { binding, toError, call }
