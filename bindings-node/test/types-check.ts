// Compile-only check of index.d.ts / testnet.d.ts (tsc --noEmit); not run.
import Hyperswarm = require('swarmplex')
import createTestnet = require('swarmplex/testnet')

async function main (): Promise<void> {
  const testnet = await createTestnet(3)
  const swarm = new Hyperswarm({ seed: Buffer.alloc(32, 4), bootstrap: testnet.bootstrap, maxPeers: 8, firewall: (k) => k.length !== 32 })
  swarm.on('connection', (socket, info) => {
    const k: Buffer = socket.remotePublicKey
    const h: Buffer = socket.handshakeHash
    const i: boolean = socket.isInitiator
    const ok: boolean = socket.write(Buffer.from('hi'))
    socket.on('error', () => {})
    info.on('topic', (t: Buffer) => t.length)
    const ts: Buffer[] = info.topics
    void [k, h, i, ok, ts, socket.publicKey]
  })
  swarm.on('update', () => swarm.connecting)
  swarm.on('ban', (info, err) => [info.publicKey, err.message])
  const attempted: number = swarm.stats.connects.client.attempted
  const banned: number = swarm.stats.bannedPeers
  void [attempted, banned, new Hyperswarm({ port: [10000, 10100], handshakeClearWait: 100, backoffs: [1, 2, 3, 4] })]
  swarm.once('connection', async (socket: Hyperswarm.SwarmSocket) => {
    const sent: boolean = await socket.flush()
    socket.on('error', (e: Hyperswarm.SocketError) => [e.code, e.kind, sent])
  })
  const d = swarm.join(Buffer.alloc(32), { server: true, client: false })
  await d.flushed()
  await d.refresh({ client: true })
  const same: Hyperswarm.PeerDiscovery | null = swarm.status(d.topic)
  const topicOf: Hyperswarm.PeerDiscovery = d.discovery
  await topicOf.refresh()
  for (const x of swarm.topics()) void x.isServer
  swarm.joinPeer(Buffer.alloc(32))
  swarm.leavePeer(Buffer.alloc(32))
  const flushed: boolean = await swarm.flush()
  await swarm.listen()
  await swarm.suspend()
  await swarm.resume()
  await swarm.leave(d.topic)
  await d.destroy()
  const peers: Map<string, Hyperswarm.PeerInfo> = swarm.peers
  const conns: Set<Hyperswarm.SwarmSocket> = swarm.connections
  void [same, flushed, peers, conns, swarm.keyPair.secretKey, swarm.destroyed]
  await swarm.destroy()
  await testnet.destroy()
}
void main
