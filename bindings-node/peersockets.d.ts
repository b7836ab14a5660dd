// Type declarations for swarmplex/peersockets: peersockets' API on a swarmplex Swarm.
/// <reference types="node" />
import { EventEmitter } from 'events'
import Hyperswarm = require('./index')

declare namespace Peersockets {
  interface JoinOptions {
    /** A message for this topic arrived from `remoteKey` (the sender's public key). */
    onmessage?: (remoteKey: Buffer, msg: Buffer) => void
    /** The topic was left (leave()). */
    onclose?: () => void
  }

  class TopicHandle {
    readonly topicName: string
    readonly closed: boolean
    /** Sends to a connected peer; delivered only if it joined this topic. */
    send (remoteKey: Buffer | Uint8Array, msg: string | Buffer | Uint8Array): Promise<void>
    /** Sends to every connected peer (only those that joined deliver it); resolves with how many sends succeeded. */
    broadcast (msg: string | Buffer | Uint8Array): Promise<number>
    /** Stops delivering to this handle (the topic stays joined). */
    close (): void
  }
}

declare class Peersockets extends EventEmitter {
  constructor (swarm: Hyperswarm)
  readonly swarm: Hyperswarm
  join (topicName: string, opts?: Peersockets.JoinOptions): Peersockets.TopicHandle
  /** Leaves `topicName` (every topic if omitted), calling its handles' onclose. */
  leave (topicName?: string): void
  static Peersockets: typeof Peersockets
}

export = Peersockets
