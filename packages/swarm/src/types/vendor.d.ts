// Minimal declarations for the holepunch modules we use; they ship none.
declare module 'sodium-universal' {
  const sodium: {
    crypto_generichash (out: Uint8Array, input: Uint8Array, key?: Uint8Array): void
    sodium_memcmp (a: Uint8Array, b: Uint8Array): boolean
    randombytes_buf (buf: Uint8Array): void
    crypto_sign_detached (signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void
    crypto_sign_verify_detached (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  }
  export = sodium
}

declare module 'b4a' {
  const b4a: {
    from (input: string | Uint8Array | ArrayLike<number>, encoding?: BufferEncoding): Buffer
    alloc (size: number): Buffer
    concat (list: Uint8Array[]): Buffer
    equals (a: Uint8Array, b: Uint8Array): boolean
    toString (buf: Uint8Array, encoding?: BufferEncoding): string
  }
  export = b4a
}

declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events'
  export interface KeyPair { publicKey: Buffer, secretKey: Buffer }
  export interface HostPort { host: string, port: number }
  export interface HyperDHTOptions {
    bootstrap?: Array<HostPort | string>
    host?: string
    port?: number
    keyPair?: KeyPair
    ephemeral?: boolean
    firewalled?: boolean
    /** Bind another port when `port` is taken. dht-rpc's default: true. */
    anyPort?: boolean
  }
  export default class HyperDHT extends EventEmitter {
    constructor (opts?: HyperDHTOptions)
    static keyPair (seed?: Uint8Array): KeyPair
    readonly destroyed: boolean
    address (): HostPort
    ready (): Promise<void>
    fullyBootstrapped (): Promise<void>
    /** The announcements stored under `target`, node by node, as the query walks the DHT. */
    lookup (target: Buffer): AsyncIterable<{ peers: Array<{ publicKey: Buffer }> }>
    /** Resolves when the node answers a ping; rejects (after its retries) when it does not. */
    ping (to: HostPort): Promise<unknown>
    destroy (opts?: { force?: boolean }): Promise<void>
  }
}

declare module 'hyperswarm' {
  import type { EventEmitter } from 'node:events'
  import type HyperDHT from 'hyperdht'
  import type { KeyPair } from 'hyperdht'
  export interface PeerDiscovery {
    flushed (): Promise<void>
    refresh (opts?: { client?: boolean, server?: boolean }): Promise<void>
    destroy (): Promise<void>
  }
  export interface HyperswarmOptions {
    dht?: HyperDHT
    keyPair?: KeyPair
    maxPeers?: number
    firewall?: (remotePublicKey: Buffer) => boolean
  }
  export default class Hyperswarm extends EventEmitter {
    constructor (opts?: HyperswarmOptions)
    readonly dht: HyperDHT
    readonly keyPair: KeyPair
    readonly connections: Set<unknown>
    join (topic: Buffer, opts?: { server?: boolean, client?: boolean }): PeerDiscovery
    leave (topic: Buffer): Promise<void>
    flush (): Promise<void>
    destroy (opts?: { force?: boolean }): Promise<void>
  }
}

declare module '@hyperswarm/secret-stream' {
  import type { Duplex } from 'node:stream'
  import type { KeyPair } from 'hyperdht'
  export default class NoiseSecretStream extends Duplex {
    constructor (isInitiator: boolean, rawStream: Duplex, opts?: { keyPair?: KeyPair })
    readonly opened: Promise<boolean>
    readonly publicKey: Buffer
    readonly remotePublicKey: Buffer
    readonly handshakeHash: Buffer
  }
}
