// Type declarations for swarmplex/testnet: DHT bootstrap nodes on 127.0.0.1.

declare namespace createTestnet {
  interface Testnet {
    /** Multiaddrs of the nodes (QUIC and TCP), each ending in /p2p/<peer id>: pass as `bootstrap`. */
    readonly bootstrap: string[]
    readonly size: number
    /** Stops every node. */
    destroy (): Promise<void>
  }
  const createTestnet: (size?: number) => Promise<Testnet>
}

/** Starts `size` (default 3) DHT nodes on 127.0.0.1. */
declare function createTestnet (size?: number): Promise<createTestnet.Testnet>

export = createTestnet
