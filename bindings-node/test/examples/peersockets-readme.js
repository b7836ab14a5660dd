// The peersockets README's example. Changes: the require line; the README's placeholders filled
// in ("my swarm networker" is a swarmplex Swarm, and the friend is a second swarm in this
// process, already swarming with us on a topic and subscribed to 'my-topic'); the handler takes
// the arguments in the order the README's API section documents, onmessage(remoteKey, msg) (the
// example's own `(msg, peer)` and `remotePublicKeytoString` cannot run against any
// implementation of that API). The testnet bootstrap comes from $SWARMPLEX_BOOTSTRAP.
const Peersockets = require('swarmplex/peersockets')
const Swarm = require('swarmplex')

;(async () => {
// -- placeholder set-up: us and a friend, already swarming together
const networker = new Swarm()
const friend = new Swarm()
const friendSockets = new Peersockets(friend)
const done = new Promise((resolve) => friendSockets.join('my-topic', {
  onmessage: (remoteKey, msg) => {
    console.log(`I got message ${msg} from ${remoteKey.toString('hex')}`)
    resolve()
  }
}))
const topic = Buffer.alloc(32).fill('peersockets readme')
await friend.join(topic, { server: true, client: false }).flushed()
networker.join(topic, { server: false, client: true })
await networker.flush()
// -- the README's example
const sockets = new Peersockets(networker)

// Let's say you have a friend's NOISE key, and you're already swarming with them.
const friendKey = friend.keyPair.publicKey

const handle = sockets.join('my-topic', {
  onmessage: (remoteKey, msg) => {
   console.log(`I got message ${msg} from ${remoteKey.toString('hex')}`)
  }
})

// If your friend is also subscribed to topic 'my-topic', they will receive this message.
handle.send(friendKey, 'hello!')
// -- end of the example: wait for the friend to print, then shut down
await done
await Promise.all([networker.destroy(), friend.destroy()])
})()
