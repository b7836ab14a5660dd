// Compile-only check of p2plex.d.ts / peersockets.d.ts (tsc --noEmit); not run.
import Hyperswarm = require('swarmplex')
import p2plex = require('swarmplex/p2plex')
import Peersockets = require('swarmplex/peersockets')
import Exchange = require('swarmplex/peer-exchange')

async function exchange (): Promise<void> {
  const ex = new Exchange('net', { seed: Buffer.alloc(32) })
  const a: Exchange.Address = await ex.accept('tcp', { port: 0, host: '127.0.0.1' })
  const p: Exchange.Peer = await ex.connect('quic', '127.0.0.1', { port: a.port ?? 0 })
  const t: 'tcp' | 'quic' | 'websocket' | 'relay' = p.socket.transport
  ex.on('peer', (peer) => peer.getNewPeer((err, q) => void [err, q?.remoteAddress]))
  await ex.accept('websocket', { port: 0 })
  await ex.unaccept('websocket')
  ex.unaccept('tcp', (err) => void err)
  void [t, ex.peers.length, ex.id, await ex.getNewPeer(), ex.close()]
}
void exchange

async function main (): Promise<void> {
  const plex = p2plex({ listenSelf: false, bootstrap: [], mdns: false })
  const k: Buffer = plex.publicKey
  const sw: Hyperswarm = plex.swarm
  plex.on('connection', (peer) => {
    const s: p2plex.PeerStream = peer.receiveStream('x')
    s.on('data', (d: Buffer) => d.length)
    peer.on('stream', (stream, id: string) => stream.end(id))
    peer.on('topic', (t: Buffer) => t.length)
    peer.on('disconnected', () => {})
    const inc: boolean = peer.incoming
    void [inc, peer.topics, peer.createSharedStream('y')]
  })
  const ac = new AbortController()
  const peer: p2plex.Peer = await plex.findByPublicKey(Buffer.alloc(32), { signal: ac.signal, timeout: 1000 })
  await plex.findByTopicAndPublicKey(Buffer.alloc(32), k, { announce: true, lookup: false, timeout: 5 })
  peer.createStream('z').end('hi')
  peer.ban()
  await peer.disconnect()
  await plex.join(Buffer.alloc(32), { announce: true })
  await plex.leave(Buffer.alloc(32))
  const ps: Set<p2plex.Peer> = plex.peers
  void ps
  const sockets = new Peersockets(sw)
  const h = sockets.join('topic', { onmessage: (remoteKey: Buffer, msg: Buffer) => void [remoteKey, msg], onclose: () => {} })
  await h.send(k, 'hello')
  const n: number = await h.broadcast(Buffer.from('all'))
  h.close()
  sockets.leave('topic')
  sockets.leave()
  sw.on('message', (remote: Buffer, topic: string, data: Buffer) => void [remote, topic, data, n])
  await plex.destroy()
}
void main
