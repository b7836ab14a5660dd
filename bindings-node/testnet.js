'use strict'
// A local testnet: DHT bootstrap nodes on 127.0.0.1 (like `hyperdht/testnet`).
//   const { createTestnet } = require('swarmplex/testnet')
//   const testnet = await createTestnet(3)
//   new Swarm({ bootstrap: testnet.bootstrap })
const { binding, toError } = require('./lib/native')

async function createTestnet (size = 3) {
  if (!Number.isInteger(size) || size < 1 || size > 64) throw new TypeError(`testnet size must be an integer in 1..64, got ${size}`)
  let native
  try {
    native = await binding.NativeTestnet.create(size)
  } catch (err) {
    throw toError(err)
  }
  const bootstrap = native.bootstrap
  // Like hyperdht's testnet (its UDP sockets), a running testnet keeps the process alive;
  // destroy() releases it.
  const keepAlive = setInterval(noop, 0x7fffffff)
  let destroying = null
  return {
    bootstrap,
    size,
    destroy () {
      if (!destroying) {
        clearInterval(keepAlive)
        destroying = native.destroy().catch((err) => { throw toError(err) })
      }
      return destroying
    }
  }
}

function noop () {}

module.exports = createTestnet
module.exports.createTestnet = createTestnet
