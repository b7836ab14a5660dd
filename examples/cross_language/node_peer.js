// A Node peer for the cross-language example: greets every peer it meets on $TOPIC and prints
// the lines it receives as "[key] line". Exits when its stdin closes.
const crypto = require('crypto')
const Swarm = require('../../bindings-node')

const topic = crypto.createHash('sha256').update(process.env.TOPIC).digest()
const swarm = new Swarm({ bootstrap: process.env.SWARMPLEX_BOOTSTRAP.split(','), mdns: false })
const me = swarm.keyPair.publicKey.toString('hex').slice(0, 8)

swarm.on('connection', (socket) => {
  const who = socket.remotePublicKey.toString('hex').slice(0, 8)
  socket.write(`hello from node ${me}\n`)
  let pending = ''
  socket.on('data', (data) => {
    pending += data
    let i
    while ((i = pending.indexOf('\n')) >= 0) {
      console.log(`[${who}] ${pending.slice(0, i)}`)
      pending = pending.slice(i + 1)
    }
  })
  socket.on('error', () => {}) // a peer leaving is fine here
})
swarm.join(topic)
console.log(`* node peer ${me} joined`)
process.stdin.on('end', () => swarm.destroy())
process.stdin.resume()
