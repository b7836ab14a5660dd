// p2plex over swarmplex: find a peer by its public key and exchange data on a named stream.
//   node examples/node/p2plex.js      (starts its own local testnet; no internet needed)
// Run from a checkout: the package is bindings-node/ (npm name `swarmplex`).
'use strict'
const p2plex = require('swarmplex/p2plex')
const { createTestnet } = require('swarmplex/testnet')

async function main () {
  const testnet = await createTestnet(3)
  const opts = { bootstrap: testnet.bootstrap, mdns: false }
  const alice = p2plex(opts) // listens under its own key (listenSelf defaults to true)
  const bob = p2plex(opts)

  // Alice echoes back, upper-cased, whatever arrives on the 'shout' stream.
  alice.on('connection', (peer) => {
    const stream = peer.receiveStream('shout')
    let text = ''
    stream.on('data', (d) => { text += d })
    stream.on('end', () => stream.end(text.toUpperCase()))
  })

  // Bob knows only Alice's public key.
  const peer = await bob.findByPublicKey(alice.publicKey, { timeout: 20000 })
  const stream = peer.createStream('shout')
  stream.end('hello alice')
  let reply = ''
  for await (const chunk of stream) reply += chunk
  console.log('bob got back:', reply)

  // Both streams ended both ways, so the connection closes by itself.
  await new Promise((resolve) => peer.once('disconnected', resolve))
  console.log('connection closed once its last stream ended')

  await Promise.all([alice.destroy(), bob.destroy()])
  await testnet.destroy()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
