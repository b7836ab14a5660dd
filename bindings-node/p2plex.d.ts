// Type declarations for swarmplex/p2plex: p2plex's API on the swarmplex engine.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Duplex } from 'stream'
import Hyperswarm = require('./index')

declare namespace p2plex {
  interface P2PlexOptions extends Omit<Hyperswarm.SwarmOptions, 'keyPair'> {
    /** The identity (honoured); random by default. */
    keyPair?: Hyperswarm.KeyPair
    /** Announce this peer under its own key so findByPublicKey finds it (default true). */
    listenSelf?: boolean
  }

  interface Cancel {
    /** Rejects with an AbortError (name 'AbortError', code 'ABORT_ERR') once aborted. */
    signal?: AbortSignal | null
    /** Rejects with a TimeoutError (code 'ETIMEDOUT') after this many milliseconds. */
    timeout?: number | null
  }

  interface TopicOptions {
    /** Announce this peer under the topic (default false). */
    announce?: boolean
    /** Look up the topic and connect to its peers (default true). */
    lookup?: boolean
  }

  /** A named or shared stream over a peer's connection (writes are buffered until it opens). */
  interface PeerStream extends Duplex {
    readonly name: string
    readonly remotePublicKey: Buffer | null
    /** Resolves true once the stream is open, false if it failed to open. */
    readonly opened: Promise<boolean>
  }

  class Peer extends EventEmitter {
    readonly publicKey: Buffer
    /** Whether the remote dialed us. */
    readonly incoming: boolean
    /** Topics this peer was found under (client side; may be empty for incoming peers). */
    readonly topics: Buffer[]
    /** Whether this peer's connection is open and not closing. */
    readonly connected: boolean
    /** Opens a stream; the remote takes it with receiveStream(id) (or gets a 'stream' event). */
    createStream (id: string): PeerStream
    /** Takes the remote's createStream(id). */
    receiveStream (id: string): PeerStream
    /** Both sides call it with the same id and get the two ends of one stream. */
    createSharedStream (id: string): PeerStream
    /** Bans the peer: closes the connection and refuses it from now on. */
    ban (): void
    /** Closes the connection; resolves once it ended. */
    disconnect (): Promise<void>
    on (event: 'topic', listener: (topic: Buffer) => void): this
    on (event: 'stream', listener: (stream: PeerStream, id: string) => void): this
    on (event: 'disconnected', listener: () => void): this
    on (event: 'error', listener: (err: Error) => void): this
    on (event: string | symbol, listener: (...args: any[]) => void): this
    once (event: 'disconnected', listener: () => void): this
    once (event: string | symbol, listener: (...args: any[]) => void): this
  }

  class P2Plex extends EventEmitter {
    constructor (opts?: P2PlexOptions)
    readonly publicKey: Buffer
    readonly keyPair: Hyperswarm.KeyPair
    /** The connected peers. */
    readonly peers: Set<Peer>
    /** The underlying swarm. */
    readonly swarm: Hyperswarm
    readonly destroyed: boolean
    findByPublicKey (publicKey: Buffer | Uint8Array, opts?: Cancel): Promise<Peer>
    findByTopicAndPublicKey (topic: Buffer | Uint8Array, publicKey: Buffer | Uint8Array, opts?: TopicOptions & Cancel): Promise<Peer>
    /** Resolves once a full announce/lookup round completed. */
    join (topic: Buffer | Uint8Array, opts?: TopicOptions): Promise<void>
    leave (topic: Buffer | Uint8Array): Promise<void>
    destroy (): Promise<void>
    on (event: 'connection', listener: (peer: Peer) => void): this
    on (event: string | symbol, listener: (...args: any[]) => void): this
    once (event: 'connection', listener: (peer: Peer) => void): this
    once (event: string | symbol, listener: (...args: any[]) => void): this
  }
}

declare function p2plex (opts?: p2plex.P2PlexOptions): p2plex.P2Plex
declare namespace p2plex {
  const p2plex: (opts?: P2PlexOptions) => P2Plex
}

export = p2plex
