// Type declarations for swarmplex: Hyperswarm v4's API on the swarmplex Rust engine.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Duplex } from 'stream'

declare namespace Hyperswarm {
  /** swarmplex extension: whether others can dial this swarm. */
  interface Reachability {
    /** 'public' (a direct address others confirmed, or a local network), 'private' (behind a
     *  NAT: reachable through relays and hole punching) or 'unknown'. */
    state: 'unknown' | 'public' | 'private'
    /** Behind a symmetric NAT: hole punching rarely works, sessions run relayed. */
    symmetric: boolean
    /** The multiaddrs this swarm advertises as dialable. */
    external: string[]
    /** Public keys of the relays it holds a reservation on. */
    relays: Buffer[]
  }
  interface KeyPair {
    /** 32-byte Ed25519 public key. */
    publicKey: Buffer
    /** 64-byte libsodium secret key (seed ‖ public key). */
    secretKey: Buffer
  }

  interface SwarmOptions {
    /** The identity; random by default. Give keyPair or seed, not both. */
    keyPair?: KeyPair
    /** 32-byte seed: the same key pair as Hyperswarm (libsodium `crypto_sign_seed_keypair`). */
    seed?: Buffer | Uint8Array
    /** Cap on connections (open plus in progress); default 64 as in Hyperswarm. */
    maxPeers?: number
    /** Called once per peer before a connection is accepted: return true to reject (and ban). */
    firewall?: ((remotePublicKey: Buffer, payload: null) => boolean | Promise<boolean>) | null
    /** Bootstrap multiaddrs, each ending in /p2p/<peer id> (e.g. a testnet's `bootstrap`).
     *  Default: $SWARMPLEX_BOOTSTRAP, else the public DHT. */
    bootstrap?: string[] | null
    /** A private network name (its own DHT protocol); default: the public DHT. */
    network?: string
    /** LAN discovery by multicast DNS; default true (as in the engine). */
    mdns?: boolean
    /** Listen multiaddrs; default QUIC and TCP on every interface, random ports. */
    listen?: string[]
    /** Hyperswarm's `port`: the QUIC and TCP listen port, or a [min, max] range (each transport
     *  binds the first free port in it). Not together with `listen`. */
    port?: number | [number, number]
    /** Hyperswarm and HyperDHT options accepted and ignored (any other name is ignored with a
     *  warning). */
    dht?: unknown
    maxParallel?: number
    maxClientConnections?: number
    maxServerConnections?: number
    backoffs?: number[]
    jitter?: number
    handshakeClearWait?: number
    relayThrough?: unknown
    nodes?: unknown[]
    deferRandomPunch?: boolean
    randomPunchInterval?: number
    [dhtOption: string]: unknown
  }

  interface Stats {
    /** 'update' events emitted. */
    updates: number
    connects: {
      /** Connections to peers we looked up (topic client or joinPeer); attempted counts dials. */
      client: { opened: number, closed: number, attempted: number }
      /** Connections from peers that found us. */
      server: { opened: number, closed: number }
    }
    /** 'ban' events emitted. */
    bannedPeers: number
  }

  /** A socket error: `code` is Node's (ECONNRESET, ETIMEDOUT, ...), `kind` the engine's
   *  ErrorKind ('reset', 'closed', 'timeout', ...). */
  interface SocketError extends Error {
    code: string
    kind: string
  }

  interface JoinOptions {
    /** Announce this peer for the topic (default true). */
    server?: boolean
    /** Look up and connect to the topic's servers (default true). */
    client?: boolean
  }

  /** The encrypted socket to one peer. No 'error' listener is attached by default. */
  class SwarmSocket extends Duplex {
    /** The remote peer's public key. */
    readonly remotePublicKey: Buffer
    /** This swarm's public key. */
    readonly publicKey: Buffer
    /** 32 bytes, equal on both sides, unique per connection. */
    readonly handshakeHash: Buffer
    /** Whether this side dialed the transport connection. */
    readonly isInitiator: boolean
    /** swarmplex: 'quic', 'tcp' or 'relay' (a circuit through another peer). */
    readonly transport: string
    /** swarmplex: the remote IP (the circuit multiaddr when relayed), its port, and the full multiaddr. */
    readonly remoteAddress: string
    readonly remotePort: number
    readonly remoteMultiaddr: string
    readonly opened: Promise<boolean>
    /** Resolves true once everything written so far was flushed to the transport; false if the
     *  socket never opened or was destroyed first. */
    flush (): Promise<boolean>
    /** No-ops kept for Hyperswarm compatibility (the engine runs its own keep-alives). */
    setKeepAlive (ms?: number): void
    setTimeout (ms?: number): void
  }

  /** What the swarm knows about a peer. */
  class PeerInfo extends EventEmitter {
    readonly publicKey: Buffer
    relayAddresses: unknown[]
    reconnecting: boolean
    proven: boolean
    banned: boolean
    tried: boolean
    explicit: boolean
    queued: boolean
    /** Whether we found this peer as a client of some topic. */
    client: boolean
    /** Topics under which we found this peer as a client (empty for incoming peers). */
    topics: Buffer[]
    attempts: number
    priority: number
    readonly server: boolean
    readonly prioritized: boolean
    reconnect (val: boolean): void
    /** Bans the peer: no reconnection, refused from now on (also closes an open connection). */
    ban (val?: boolean): void
    on (event: 'topic', listener: (topic: Buffer) => void): this
    on (event: string | symbol, listener: (...args: any[]) => void): this
  }

  /** What a topic and a session of it both have. */
  interface DiscoveryState {
    readonly swarm: Hyperswarm
    readonly topic: Buffer
    readonly isServer: boolean
    readonly isClient: boolean
    readonly destroyed: boolean
    /** Resolves when this topic's announce/lookup round is done and its connections emitted. */
    flushed (): Promise<void>
  }

  /** A joined topic: what `status()` and `topics()` give. */
  interface PeerDiscovery extends DiscoveryState {
    /** Starts a new round now with the sessions' roles. */
    refresh (): Promise<void>
    /** Leaves the topic, every session of it; resolves once the announce is withdrawn
     * (existing connections stay). */
    destroy (): Promise<void>
  }
  /** What `join()` returns: one caller's interest in a topic. The topic is announced while any
   * session is a server, looked up while any is a client, and left with its last session. */
  interface PeerDiscoverySession extends DiscoveryState {
    readonly discovery: PeerDiscovery
    /** Starts a new round now, switching this session's roles if given (not both off). */
    refresh (opts?: JoinOptions): Promise<void>
    /** Ends this session; the topic is left (and its announce withdrawn) with the last one. */
    destroy (): Promise<void>
  }
}

declare class Hyperswarm extends EventEmitter {
  constructor (opts?: Hyperswarm.SwarmOptions)
  readonly keyPair: Hyperswarm.KeyPair
  readonly maxPeers: number
  /** The open sockets. */
  readonly connections: Set<Hyperswarm.SwarmSocket>
  /** Peers by hex public key. */
  readonly peers: Map<string, Hyperswarm.PeerInfo>
  readonly explicitPeers: Set<Hyperswarm.PeerInfo>
  /** Connections in progress. */
  readonly connecting: number
  readonly destroyed: boolean
  readonly suspended: boolean
  /** The pending or settled listen() promise, or null. */
  readonly listening: Promise<void> | null
  /** Hyperswarm's counters. */
  readonly stats: Hyperswarm.Stats

  join (topic: Buffer | Uint8Array, opts?: Hyperswarm.JoinOptions): Hyperswarm.PeerDiscoverySession
  leave (topic: Buffer | Uint8Array): Promise<void>
  joinPeer (publicKey: Buffer | Uint8Array): void
  leavePeer (publicKey: Buffer | Uint8Array): void
  status (topic: Buffer | Uint8Array): Hyperswarm.PeerDiscovery | null
  topics (): IterableIterator<Hyperswarm.PeerDiscovery>
  /** Announces this peer under its own key (so others can joinPeer it). */
  listen (): Promise<void>
  /** Resolves (true) when every topic's round is done and every found peer was connected
   *  (its 'connection' emitted) or given up; false if the swarm was destroyed. */
  flush (): Promise<boolean>
  suspend (): Promise<void>
  resume (): Promise<void>
  clear (): Promise<void>
  destroy (): Promise<void>

  // swarmplex extensions (used by swarmplex/p2plex and swarmplex/peersockets)
  /** Delivers topic messages sent to `topic` as 'message' events. */
  joinMessages (topic: string): void
  leaveMessages (topic: string): void
  /** Sends one message to a connected peer; delivered only if it joined `topic`. */
  sendMessage (remotePublicKey: Buffer | Uint8Array, topic: string, data: Buffer | Uint8Array): Promise<void>
  /** The open socket to that peer, or null. */
  connectionOf (remotePublicKey: Buffer | Uint8Array): Hyperswarm.SwarmSocket | null
  /** Whether others can dial us, the addresses we advertise and the relays we hold. */
  reachability (): Promise<Hyperswarm.Reachability>

  on (event: 'connection', listener: (socket: Hyperswarm.SwarmSocket, peerInfo: Hyperswarm.PeerInfo) => void): this
  on (event: 'update', listener: () => void): this
  /** err: Error('Peer is firewalled') for a firewall rejection, Error('Peer is banned') for peerInfo.ban(). */
  on (event: 'ban', listener: (peerInfo: Hyperswarm.PeerInfo, err: Error) => void): this
  on (event: 'close', listener: () => void): this
  on (event: 'message', listener: (remotePublicKey: Buffer, topic: string, data: Buffer) => void): this
  on (event: 'stream', listener: (remotePublicKey: Buffer, name: string, shared: boolean) => void): this
  on (event: 'disconnection', listener: (remotePublicKey: Buffer, reason: Error) => void): this
  on (event: 'reachability', listener: (r: { state: 'unknown' | 'public' | 'private', symmetric: boolean }) => void): this
  on (event: string | symbol, listener: (...args: any[]) => void): this
  once (event: 'connection', listener: (socket: Hyperswarm.SwarmSocket, peerInfo: Hyperswarm.PeerInfo) => void): this
  once (event: string | symbol, listener: (...args: any[]) => void): this

  static Hyperswarm: typeof Hyperswarm
  static Swarm: typeof Hyperswarm
}

export = Hyperswarm
