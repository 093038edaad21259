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
  /**
   * Swarming (relay.ts): the partial file of a download under way when
   * [offset, offset + length) lies in its verified pieces, with an upload
   * slot to give back; 'busy' when every relay slot is taken. The swarm adds it.
   */
  partial? (blake2b: Uint8Array, offset: number, length: number): { file: LocalFile, release: () => void } | 'busy' | undefined
  /**
   * Swarming: claims an upload of a range of a file held whole to the peer
   * with hex key `to`, returning its release; 'busy' when that peer is a
   * partial holder of the file and the same range is going to another peer
   * right now (it will get it from there). The swarm adds it.
   */
  claim? (blake2b: Uint8Array, offset: number, length: number, to: string): (() => void) | 'busy'
  /** Swarming: the peer with hex key `to` asked for the piece hashes of this whole file (it swarms). The swarm adds it. */
  hashesAsked? (blake2b: Uint8Array, to: string): void
}

/** Where a download's bytes go, in order; the store's Download implements it. */
export interface Sink {
  /** Bytes already there (a resumed download continues after them). */
  readonly written: number
  /** Writes the bytes at `offset`: `written` for an append, less to rewrite a repaired piece. Calls never overlap. */
  write (chunks: readonly Uint8Array[], offset: number): Promise<void>
  /**
   * Optional, for swarming: set when writes may land past `written` (pieces
   * in any order; `written` is then the end of the furthest). With
   * `tempPath` and `truncate`, a download may relay its verified pieces.
   */
  readonly allowGaps?: boolean
  /** The partial file, which relayed pieces are read from. */
  readonly tempPath?: string
  /** Cuts the partial file back to `offset` bytes (a failed swarming download keeps only its gapless prefix, to resume from). */
  truncate? (offset: number): Promise<void>
  /** Swarming: peers read from the partial file while it was in flight; its final check reads it whole again (see Download.distrust). */
  distrust? (): void
  /** Swarming: the piece hashes (BLAKE2b-512, first 32 bytes) of what was written over [offset, offset + length), read back; for pieces written before anyone else wanted the file. */
  hashPieces? (offset: number, length: number, pieceSize: number): Promise<Buffer[]>
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
  /** Stops reading: what the remote sends meanwhile waits in its socket (streamx, net.Socket). */
  pause? (): unknown
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
