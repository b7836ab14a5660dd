// The Node side of examples/cross_language/peersockets.py: joins peersockets topic "chat" on a
// swarm meeting on $TOPIC, sends "hello from node" to each peer it connects to, and prints every
// message it receives as "got <message>". Exits when its stdin closes.
const crypto = require('crypto')
const Swarm = require('../../bindings-node')
const Peersockets = require('../../bindings-node/lib/peersockets')

const swarm = new Swarm({ bootstrap: process.env.SWARMPLEX_BOOTSTRAP.split(','), mdns: false })
const sockets = new Peersockets(swarm)
const chat = sockets.join('chat', {
  onmessage (remoteKey, msg) {
    console.log(`got ${msg}`)
  }
})
swarm.on('connection', (socket) => {
  socket.on('error', () => {})
  chat.send(socket.remotePublicKey, 'hello from node')
})
swarm.join(crypto.createHash('sha256').update(process.env.TOPIC).digest())
process.stdin.on('end', () => swarm.destroy())
process.stdin.resume()
