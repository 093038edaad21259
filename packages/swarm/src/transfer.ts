import { debugLogger, MAX_REQUEST_LENGTH, MIN_PIECE_SIZE, type FileEntry, type Logger } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import { recycle } from './link.js'
import { intOption } from './options.js'
import type { Peer } from './peer.js'
import type { Sink } from './types.js'

export const DEFAULT_RANGE_SIZE = 4 * 1024 * 1024
export const DEFAULT_WINDOW = 2
export const DEFAULT_MAX_AHEAD = 8
export const DEFAULT_HEDGE_AFTER_MS = 2000
export const DEFAULT_RECONNECT_GRACE_MS = 5000

export interface TransferOptions {
  /** Bytes of one piece: what one request asks for. */
  rangeSize: number
  /** Requests in flight per source. */
  window: number
  /** Pieces held in memory ahead of the write position; bounds memory to about rangeSize × maxAhead. */
  maxAhead: number
  /** A piece in flight this long (and longer than twice what its source's rate predicts) is asked of a second source too. */
  hedgeAfterMs: number
  /**
   * When every source has been declared dead (silent, ERR_PEER_DEAD), how
   * long to wait for one to come back on a new connection before failing:
   * a link that was down a while leaves its TCP connection stuck in
   * retransmission back-off, so the box is there again but that connection
   * is not, and the swarm redials it at once (see Swarm, mesh.redial).
   */
  reconnectGraceMs: number
}

/**
 * Checks transfer options, filling defaults. A rangeSize must fit one
 * Request (larger, and every peer drops us for a malformed message) and be
 * a valid piece size of a HashRequest (a diagnosis cuts pieces at it); a
 * window or maxAhead of 0 would leave the scheduler nothing to ask.
 */
export function transferOptions (opts: Partial<TransferOptions> = {}): TransferOptions {
  return {
    rangeSize: intOption('rangeSize', opts.rangeSize ?? DEFAULT_RANGE_SIZE, MIN_PIECE_SIZE, MAX_REQUEST_LENGTH),
    window: intOption('window', opts.window ?? DEFAULT_WINDOW, 1, 1024),
    maxAhead: intOption('maxAhead', opts.maxAhead ?? DEFAULT_MAX_AHEAD, 1, 1024),
    hedgeAfterMs: intOption('hedgeAfterMs', opts.hedgeAfterMs ?? DEFAULT_HEDGE_AFTER_MS, 0),
    reconnectGraceMs: intOption('reconnectGraceMs', opts.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS, 0)
  }
}

/** Where each byte range of a download came from. */
export interface PieceSource {
  offset: number
  length: number
  /** Hex public key of the peer that sent these bytes. */
  source: string
}

export interface TransferDeps {
  /** Ready peers that advertise this file (and are not excluded). Asked again as the transfer goes, so peers that arrive can help. */
  holders: () => Peer[]
  /** The connection to send a peer's requests on: its fast-path link when there is one. */
  via: (peer: Peer) => Peer
  /** Default: debug output under distswarm:transfer. */
  logger?: Logger
}

interface Source {
  peer: Peer
  inflight: number
  /** Bytes per ms over this source's finished pieces (moving average); 0 until one finishes. */
  rate: number
  failed: boolean
  /** It failed because its connection went silent (ERR_PEER_DEAD): the box may come back on a new one. */
  died: boolean
  busyUntil: number
  /** BUSY answers in a row. */
  busy: number
  /**
   * Its fast-path link died under a request. A dead peer's link dies at once
   * (its kernel resets the TCP connection) while its hyperswarm stream just
   * goes silent: until the source delivers again, other sources get its
   * pieces; alone, it is asked over its member connection, whose watchdog
   * tells within seconds whether anyone is there (see PeerLimits.deadAfterMs).
   */
  linkLost: boolean
}

interface Attempt {
  source: Source
  /** The connection asked: the source's fast-path link, or its member connection. */
  conn: Peer
  chunks: Buffer[]
  startedAt: number
  abort: AbortController
}

interface Piece {
  offset: number
  length: number
  attempts: Set<Attempt>
  data: Buffer[] | null
  from: string | null
}

/** Hold-off after a BUSY answer before asking that source again. */
const BUSY_BACKOFF_MS = 1000
/** BUSY answers in a row after which a source counts as failed. */
const MAX_BUSY = 30
/** How often the scheduler looks for pieces to hedge while it waits. */
const TICK_MS = 200
/**
 * A source that has sent nothing (not even an acknowledgement) for this long
 * while it owes us bytes gets no new pieces while others can take them, and
 * its pieces are hedged at once: a live one streams without pause, a dead one
 * is dropped after PeerLimits.deadAfterMs.
 */
const SILENT_SOURCE_MS = 1000

/** How much a source is preferred: its measured rate (unknown: first), doubled for a seeder, whose serving costs no one's work. */
function score (s: Source): number {
  return (s.rate || Infinity) * (s.peer.remoteSeeder ? 2 : 1)
}

/**
 * One file from every peer that has it: pieces are spread over the sources,
 * each `window` requests deep, so faster sources take more of them; a piece
 * that a slow source holds up is also asked of another (the first answer
 * wins, the other is cancelled); a source that fails, stalls or leaves
 * gives its pieces back to the others. Pieces are written in order, so the
 * partial file on disk is always a prefix a later attempt can resume from.
 */
export class Transfer {
  private readonly entry: FileEntry
  private readonly sink: Sink
  private readonly deps: TransferDeps
  private readonly opts: TransferOptions
  private readonly log: Logger
  private readonly pieces: Piece[] = []
  private readonly sources = new Map<string, Source>()
  private readonly provenance: PieceSource[] = []
  /** First piece not yet written. */
  private head = 0
  private writing = false
  private sinkError: { error: unknown } | null = null
  private lastError: unknown = null
  /** When the last source was declared dead (see TransferOptions.reconnectGraceMs). */
  private diedAt = 0
  private wake: (() => void) | null = null

  /**
   * Fetches `ranges` (in ascending order) when given, written over what the
   * sink holds there: a repair. Else the rest of the file after sink.written.
   */
  constructor (entry: FileEntry, sink: Sink, deps: TransferDeps, opts: Partial<TransferOptions> = {}, ranges?: ReadonlyArray<{ offset: number, length: number }>) {
    this.entry = entry
    this.sink = sink
    this.deps = deps
    this.opts = transferOptions(opts)
    this.log = deps.logger ?? debugLogger('distswarm:transfer')
    const add = (offset: number, length: number): void => { this.pieces.push({ offset, length, attempts: new Set(), data: null, from: null }) }
    if (ranges) for (const r of ranges) add(r.offset, r.length)
    else for (let offset = sink.written; offset < entry.size; offset += this.opts.rangeSize) add(offset, Math.min(this.opts.rangeSize, entry.size - offset))
  }

  /**
   * Runs to the end. Resolves to where each byte written came from; rejects
   * with the sink's own error when writing failed, else with ERR_NOT_FOUND
   * or ERR_ALL_SOURCES_FAILED when no source is left to ask. Bytes written
   * before a failure stay in the sink.
   */
  async run (): Promise<PieceSource[]> {
    try {
      for (;;) {
        if (this.sinkError) throw this.sinkError.error
        if (this.head === this.pieces.length && !this.writing) return this.provenance
        this.refreshSources()
        this.assign()
        const inflight = this.pieces.some((p) => p.attempts.size > 0)
        if (!inflight && !this.writing && this.head < this.pieces.length) {
          const waiting = [...this.sources.values()].filter((s) => !s.failed && !s.peer.closed)
          if (waiting.length === 0 && !this.awaitingReconnect()) {
            if (this.sources.size === 0) throw SwarmError.NOT_FOUND(this.entry.name)
            throw SwarmError.ALL_SOURCES_FAILED(this.entry.name, this.lastError)
          }
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve
          setTimeout(resolve, TICK_MS).unref()
        })
        this.wake = null
      }
    } finally {
      for (const p of this.pieces) for (const a of p.attempts) a.abort.abort()
    }
  }

  /** Every source went silent (none lied or refused), lately: one may come back on a new connection (refreshSources takes it). */
  private awaitingReconnect (): boolean {
    if (Date.now() - this.diedAt >= this.opts.reconnectGraceMs) return false
    for (const s of this.sources.values()) if (!s.died) return false
    return this.sources.size > 0
  }

  private notify (): void {
    this.wake?.()
  }

  private refreshSources (): void {
    for (const peer of this.deps.holders()) {
      const known = this.sources.get(peer.publicKeyHex)
      // A peer that reconnected is a new connection: give it a fresh chance.
      if (!known || (known.peer !== peer && known.peer.closed)) {
        this.sources.set(peer.publicKeyHex, { peer, inflight: 0, rate: 0, failed: false, died: false, busyUntil: 0, busy: 0, linkLost: false })
      }
    }
  }

  /** Gives free request slots pieces: new pieces first, in order; when none is due, a second attempt at a held-up one. */
  private assign (): void {
    const now = Date.now()
    const usable = [...this.sources.values()].filter((s) => !s.failed && !s.peer.closed)
    // A source whose link just died, or that went silent, is asked only when no other source is left.
    const doubtful = (s: Source): boolean => s.linkLost || this.deps.via(s.peer).silentMs >= SILENT_SOURCE_MS
    const trusted = usable.some((s) => !doubtful(s))
    const ready = usable
      .filter((s) => (!trusted || !doubtful(s)) && s.busyUntil <= now && s.inflight < this.opts.window)
      // Faster sources first, seeders counting double; one not yet measured
      // is tried early, so it gets measured; among equals, seeders first.
      .sort((a, b) => score(b) - score(a) || Number(b.peer.remoteSeeder) - Number(a.peer.remoteSeeder))
    const limit = Math.min(this.pieces.length, this.head + this.opts.maxAhead)
    for (let progress = true; progress;) {
      progress = false
      for (const source of ready) {
        if (source.inflight >= this.opts.window) continue
        const piece = this.nextFresh(limit) ?? this.nextHedge(source, now)
        if (!piece) continue
        this.start(piece, source)
        progress = true
      }
    }
  }

  private nextFresh (limit: number): Piece | undefined {
    for (let i = this.head; i < limit; i++) {
      const p = this.pieces[i]!
      if (p.data === null && p.attempts.size === 0) return p
    }
    return undefined
  }

  /** The lowest piece in flight at one other source for longer than hedgeAfterMs and twice what that source's rate predicts. */
  private nextHedge (source: Source, now: number): Piece | undefined {
    for (let i = this.head; i < this.pieces.length; i++) {
      const p = this.pieces[i]!
      if (p.data !== null || p.attempts.size !== 1) continue
      const only = p.attempts.values().next().value!
      if (only.source === source) continue
      const expected = only.source.rate > 0 ? 2 * p.length / only.source.rate : 0
      if (now - only.startedAt > Math.max(this.opts.hedgeAfterMs, expected) || only.conn.silentMs >= SILENT_SOURCE_MS) return p
    }
    return undefined
  }

  private start (piece: Piece, source: Source): void {
    const conn = this.deps.via(source.peer)
    const attempt: Attempt = { source, conn, chunks: [], startedAt: Date.now(), abort: new AbortController() }
    piece.attempts.add(attempt)
    source.inflight++
    const hedged = piece.attempts.size > 1
    if (hedged) this.log.debug('transfer.hedge', { name: this.entry.name, offset: piece.offset, peer: source.peer.label })
    conn.request(this.entry.blake2b, piece.offset, piece.length, (bytes) => attempt.chunks.push(bytes), attempt.abort.signal)
      .then(() => this.finished(piece, attempt), (err: unknown) => this.failed(piece, attempt, conn, err))
      .finally(() => {
        source.inflight--
        piece.attempts.delete(attempt)
        this.notify()
      })
  }

  private finished (piece: Piece, attempt: Attempt): void {
    if (piece.data !== null) return
    const ms = Math.max(1, Date.now() - attempt.startedAt)
    const rate = piece.length / ms
    attempt.source.busy = 0
    attempt.source.linkLost = false
    attempt.source.rate = attempt.source.rate === 0 ? rate : 0.7 * attempt.source.rate + 0.3 * rate
    piece.data = attempt.chunks
    piece.from = attempt.source.peer.publicKeyHex
    for (const other of piece.attempts) if (other !== attempt) other.abort.abort()
    void this.drainWrites()
  }

  private failed (piece: Piece, attempt: Attempt, conn: Peer, err: unknown): void {
    if (attempt.abort.signal.aborted) return
    const source = attempt.source
    const code = (err as { code?: string }).code
    if (code === 'ERR_REMOTE_BUSY' && ++source.busy < MAX_BUSY) {
      source.busyUntil = Date.now() + BUSY_BACKOFF_MS
    } else if (conn !== source.peer && conn.closed && !source.peer.closed) {
      // The fast-path link died; the member connection may still work, and the next request (if any) goes over it.
      source.linkLost = true
      this.log.debug('transfer.link-lost', { name: this.entry.name, peer: source.peer.label })
    } else {
      source.failed = true
      this.lastError = err
      if (code === 'ERR_PEER_DEAD') {
        source.died = true
        this.diedAt = Date.now()
      }
      this.log.debug('transfer.source-failed', { name: this.entry.name, peer: source.peer.label, offset: piece.offset, code, why: (err as Error).message })
      // Its other pieces go back to the pool at once.
      for (const p of this.pieces) for (const a of p.attempts) if (a.source === source && a !== attempt) a.abort.abort()
    }
  }

  /** Writes finished pieces in order, one write at a time (the sink's backpressure holds further pieces back through maxAhead). */
  private async drainWrites (): Promise<void> {
    if (this.writing) return
    this.writing = true
    try {
      for (let p = this.pieces[this.head]; p?.data && !this.sinkError; p = this.pieces[this.head]) {
        try {
          await this.sink.write(p.data, p.offset)
        } catch (error) {
          this.sinkError = { error }
          break
        }
        this.provenance.push({ offset: p.offset, length: p.length, source: p.from! })
        // Written and let go of: the link's receive buffers under them take the next records.
        if (this.sink.releasesChunks === true) for (const c of p.data) recycle(c)
        p.data = null
        this.head++
      }
    } finally {
      this.writing = false
      this.notify()
    }
  }
}

/** Distinct sources of a download, in order of first appearance. */
export function sourcesOf (pieces: readonly PieceSource[]): string[] {
  return [...new Set(pieces.map((p) => p.source))]
}
