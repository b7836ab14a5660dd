// The p2pswarm README's usage example. Changes: the require line, and the body wrapped in an
// async function (the README uses top-level await, which CommonJS does not allow). The testnet
// bootstrap comes from $SWARMPLEX_BOOTSTRAP (set by the test).
;(async () => {
const P2Pswarm = require('swarmplex')
const swarm1 = new P2Pswarm()
const swarm2 = new P2Pswarm()
swarm1.on('connection', (conn, info) => {
// swarm1 will receive server connections
conn.write('this is a server connection')
conn.end()
})
swarm2.on('connection', (conn, info) => {
conn.on('data', data => console.log('client got message:', data.toString()))
})
const topic = Buffer.alloc(32).fill('hello world') // A topic must be 32 bytes
const discovery = swarm1.join(topic, { server: true, client: false })
await discovery.flushed() // Waits for the topic to be fully announced on the DHT
swarm2.join(topic, { server: false, client: true })
await swarm2.flush() // Waits for the swarm to connect to pending peers.
// After this point, both client and server should have connections
})()
