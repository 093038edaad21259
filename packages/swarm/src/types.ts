import type { FileEntry } from '@distswarm/protocol'

/** A file this agent can serve. */
export interface LocalFile extends FileEntry {
  path: string
}

/** What the swarm advertises and serves from; the store implements it. */
export interface LocalSource {
  entries (): Iterable<LocalFile>
  get (blake2b: Uint8Array): LocalFile | undefined
  /**
   * Piece hashes of our copy of a file (see the HashRequest message), for a
   * peer finding out which of its sources lied; undefined when we lack the
   * file. Optional: without it such requests are answered NOT_FOUND.
   */
  hashPieces? (blake2b: Uint8Array, offset: number, length: number, pieceSize: number): Promise<Buffer[] | undefined>
}

/** Where a download's bytes go, in order; the store's Download implements it. */
export interface Sink {
  /** Bytes already there (a resumed download continues after them). */
  readonly written: number
  /** Writes the bytes at `offset`: `written` for an append, less to rewrite a repaired piece. Calls never overlap. */
  write (chunks: readonly Uint8Array[], offset: number): Promise<void>
  /** True when the sink keeps no reference to the chunks once write() resolved: their buffers are then reused. Default false. */
  readonly releasesChunks?: boolean
}

/** The part of @hyperswarm/secret-stream's NoiseSecretStream that we use. */
export interface SecretStream {
  readonly publicKey: Buffer
  readonly remotePublicKey: Buffer
  readonly handshakeHash: Buffer
  /** True on the side that dialled. */
  readonly isInitiator: boolean
  /** A UDX stream (hyperswarm) has remoteHost and rtt (its smoothed round-trip time, ms); a TCP socket remoteAddress. */
  readonly rawStream?: { remoteHost?: string, remoteAddress?: string, remotePort?: number, rtt?: number, packetsReceived?: number }
  /** Sends an empty message (secret-stream's keepalive): on UDX the remote's stack acknowledges it. */
  sendKeepAlive?: () => void
  /** A buffer for a message of `length` bytes that the next write() of it sends without a copy. */
  alloc? (length: number): Buffer
  write (data: Uint8Array): boolean
  end (): void
  destroy (err?: Error): void
  on (event: 'data', fn: (chunk: Buffer) => void): this
  on (event: 'drain' | 'close', fn: () => void): this
  on (event: 'error', fn: (err: Error) => void): this
}

export interface KeyPair {
  publicKey: Buffer
  secretKey: Buffer
}

export interface HostPort {
  host: string
  port: number
}
