// Type declarations for swarmplex/peer-exchange: peer-exchange's API on the swarmplex engine.
/// <reference types="node" />
import { EventEmitter } from 'events'
import Hyperswarm = require('./index')

declare namespace Exchange {
  type Transport = 'tcp' | 'quic' | 'websocket'

  interface Options {
    keyPair?: { publicKey: Buffer, secretKey: Buffer }
    seed?: Buffer
    maxPeers?: number
    firewall?: (remotePublicKey: Buffer) => boolean | Promise<boolean>
  }

  interface AcceptOptions { port?: number, host?: string }
  interface ConnectOptions { port: number }
  interface Address { transport: Transport, host: string | null, port: number | null, multiaddr: string }

  /** A connected peer: the connection's Duplex socket. */
  interface Peer extends Hyperswarm.SwarmSocket {
    /** Itself, so `peer.socket.transport` reads as in the original. */
    readonly socket: Peer
    /** 'tcp', 'quic', 'websocket', or 'relay' (through the peer that introduced it). */
    readonly transport: Transport | 'relay'
    /** The remote IP, or the relay circuit multiaddr when relayed. */
    readonly remoteAddress: string
    readonly remotePort: number
    /** Asks this peer for another peer and connects to it. */
    getNewPeer (cb?: (err: Error | null, peer?: Peer) => void): Promise<Peer>
  }
}

declare class Exchange extends EventEmitter {
  constructor (networkId: string, opts?: Exchange.Options)
  static readonly transports: Exchange.Transport[]
  readonly id: string
  readonly publicKey: Buffer
  readonly peers: Exchange.Peer[]
  readonly swarm: Hyperswarm
  accept (transport: Exchange.Transport, opts?: Exchange.AcceptOptions, cb?: (err: Error | null, address?: Exchange.Address) => void): Promise<Exchange.Address>
  /** Stops accepting on `transport` (connections already made stay). */
  unaccept (transport: Exchange.Transport, cb?: (err: Error | null) => void): Promise<void>
  connect (transport: Exchange.Transport, host: string, opts: Exchange.ConnectOptions, cb?: (err: Error | null, peer?: Exchange.Peer) => void): Promise<Exchange.Peer>
  getNewPeer (cb?: (err: Error | null, peer?: Exchange.Peer) => void): Promise<Exchange.Peer>
  close (cb?: (err: Error | null) => void): Promise<void>
  on (event: 'peer', listener: (peer: Exchange.Peer) => void): this
  on (event: 'error', listener: (err: Error) => void): this
  on (event: 'close', listener: () => void): this
}

export = Exchange
