'use strict'
// Loads the addon built by scripts/build.js.
const path = require('path')

let binding
try {
  binding = require(path.join(__dirname, '..', 'native', 'swarmplex.node'))
} catch (err) {
  const e = new Error('swarmplex: the native addon is missing or failed to load (run `npm run build` in bindings-node/): ' + err.message)
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
