// The peer-exchange README's usage example. Changes: the require line; the 'websocket' and
// 'webrtc' lines are gone (those transports are not built); the known initial peer is the
// local one the test started ($PEX_HOST, $PEX_PORT) instead of 10.0.0.2:8000.
var Exchange = require('swarmplex/peer-exchange')

var ex = new Exchange('some-network-id') // pick some ID for your network

// optionally specify you want to accept incoming connections
ex.accept('tcp', { port: 8001 })

ex.on('peer', (peer) => {
  console.log('connected to peer:', peer.socket.transport, peer.remoteAddress)
})

// bootstrap by connecting to a few already-known initial peers
ex.connect('tcp', process.env.PEX_HOST, { port: Number(process.env.PEX_PORT) }, (err, peer) => {
  // `peer` is a duplex stream

  // now that we're connected, we can request more peers from our current peers.
  // this selects a peer at random and queries it for a new peer:
  ex.getNewPeer((err, peer) => {
    console.log('a random peer sent us a new peer:', peer.socket.transport, peer.remoteAddress)
    // `peer` is a duplex stream
  })
})
