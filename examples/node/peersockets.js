// peersockets over swarmplex: topic-tagged messages between connected peers.
//   node examples/node/peersockets.js      (starts its own local testnet; no internet needed)
// Run from a checkout: the package is bindings-node/ (npm name `swarmplex`).
'use strict'
const Swarm = require('swarmplex')
const Peersockets = require('swarmplex/peersockets')
const { createTestnet } = require('swarmplex/testnet')

async function main () {
  const testnet = await createTestnet(3)
  const a = new Swarm({ bootstrap: testnet.bootstrap, mdns: false })
  const b = new Swarm({ bootstrap: testnet.bootstrap, mdns: false })

  // Connect the two swarms through a topic.
  const topic = Buffer.alloc(32).fill('peersockets example')
  await b.join(topic, { server: true, client: false }).flushed()
  a.join(topic, { server: false, client: true })
  await a.flush()

  // b listens on the 'chat' topic; a sends it a message.
  const got = new Promise((resolve) => {
    new Peersockets(b).join('chat', {
      onmessage: (remoteKey, msg) => resolve([remoteKey, msg])
    })
  })
  const chat = new Peersockets(a).join('chat')
  await chat.send(b.keyPair.publicKey, 'hi b!')
  const [from, msg] = await got
  console.log(`b got "${msg}" from ${from.toString('hex').slice(0, 8)}… (a: ${a.keyPair.publicKey.toString('hex').slice(0, 8)}…)`)

  await Promise.all([a.destroy(), b.destroy()])
  await testnet.destroy()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
