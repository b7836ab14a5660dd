// The peer-exchange README's usage example. Changes: the require line; the 'webrtc' line is
// gone (that transport is not built); the known initial peers are the local ones the test
// started ($PEX_HOST with $PEX_WS_PORT and $PEX_PORT) instead of 10.0.0.1:8000 and
// 10.0.0.2:8000; the websocket connect's `{ ... }` placeholder body is empty.
var Exchange = require('swarmplex/peer-exchange')

var ex = new Exchange('some-network-id') // pick some ID for your network

// optionally specify you want to accept incoming connections
ex.accept('websocket', { port: 8000 })
ex.accept('tcp', { port: 8001 })

ex.on('peer', (peer) => {
  console.log('connected to peer:', peer.socket.transport, peer.remoteAddress)
})

// bootstrap by connecting to a few already-known initial peers
ex.connect('websocket', process.env.PEX_HOST, { port: Number(process.env.PEX_WS_PORT) }, (err, peer) => { })
ex.connect('tcp', process.env.PEX_HOST, { port: Number(process.env.PEX_PORT) }, (err, peer) => {
  // `peer` is a duplex stream

  // now that we're connected, we can request more peers from our current peers.
  // this selects a peer at random and queries it for a new peer:
  ex.getNewPeer((err, peer) => {
    console.log('a random peer sent us a new peer:', peer.socket.transport, peer.remoteAddress)
    // `peer` is a duplex stream
  })
})
