'use strict'
// Input checks: bad input throws a TypeError at once, before anything reaches Rust.

function isBytes (b) {
  return Buffer.isBuffer(b) || b instanceof Uint8Array
}

function toBuffer (b) {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

function key32 (b, what) {
  if (!isBytes(b) || b.byteLength !== 32) {
    throw new TypeError(`${what} must be a 32-byte Buffer, got ${describe(b)}`)
  }
  return toBuffer(b)
}

function describe (v) {
  if (v === null) return 'null'
  if (isBytes(v)) return `${v.constructor.name} of ${v.byteLength} bytes`
  if (Array.isArray(v)) return 'an array'
  return typeof v
}

function optBool (opts, name, dflt) {
  const v = opts[name]
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw new TypeError(`option ${name} must be a boolean, got ${describe(v)}`)
  return v
}

function checkObject (v, what) {
  if (v === undefined || v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`${what} must be an object, got ${describe(v)}`)
  return v
}

module.exports = { isBytes, toBuffer, key32, describe, optBool, checkObject }
