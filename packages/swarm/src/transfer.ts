import { debugLogger, MAX_REQUEST_LENGTH, MIN_PIECE_SIZE, type FileEntry, type Logger } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import { recycle } from './link.js'
import { intOption } from './options.js'
import type { Peer } from './peer.js'
import { pieceHash } from './pieces.js'
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
  /** Swarming: peers holding verified pieces of this file (cut at rangeSize from 0), and which. */
  partialHolders?: () => Array<{ peer: Peer, has: (piece: number) => boolean }>
}

/**
 * Swarming (relay.ts): pieces are cut at rangeSize from offset 0, fetched in
 * any order (rarest first, from whole-file and partial holders alike) and
 * written where they belong, each checked against its piece hash first.
 */
export interface RelayMode {
  /**
   * The agreed hash of each piece of the file (an entry null: none agreed,
   * never relayed); null while the holders' answers are awaited (the
   * download does not wait for them: pieces that land before are checked
   * once they come, and partial holders are asked only after).
   */
  hashes: () => ReadonlyArray<Buffer | null> | null
  /**
   * Whether some other member downloads the file too. Until then pieces
   * from whole-file holders are not hashed (a lone download offers them to
   * no one); those written meanwhile are read back and checked (the sink's
   * hashPieces) once it does.
   */
  wanted: () => boolean
  /** A piece matched its hash and is written: it may be relayed. */
  onHave: (piece: number) => void
  /** A partial holder sent a piece that failed its hash: blame it (it is dropped from this transfer). */
  onFault: (publicKeyHex: string, why: string) => void
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
  /** Which pieces it holds: null for the whole file, else a partial holder's verified pieces. */
  has: ((piece: number) => boolean) | null
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
  /** Swarming: its index in the file (offset / rangeSize), and whether it is written. */
  index: number
  written: boolean
  verified: boolean
  /** Swarming: its piece hash as it arrived, kept until the agreed hashes come to check it against. */
  hash: Buffer | null
  /** Swarming: it landed while no one else wanted the file, unhashed (see RelayMode.wanted). */
  unchecked: boolean
}

/** Hold-off after a BUSY answer before asking that source again. */
const BUSY_BACKOFF_MS = 1000
/** BUSY answers in a row after which a source counts as failed. */
const MAX_BUSY = 30
/**
 * Swarming: a seeder answers BUSY for a piece on its way to another
 * downloader (relay.ts, claim), which has it moments later; a partial holder
 * when its relay slots are taken. Both pass quickly: ask again sooner, and
 * put up with as many in a row for about as long.
 */
const SWARMING_BUSY_BACKOFF_MS = 250
const MAX_BUSY_SWARMING = 120
/** How often the scheduler looks for pieces to hedge while it waits. */
const TICK_MS = 200
/**
 * A source that has sent nothing (not even an acknowledgement) for this long
 * while it owes us bytes gets no new pieces while others can take them, and
 * its pieces are hedged at once: a live one streams without pause, a dead one
 * is dropped after PeerLimits.deadAfterMs.
 */
const SILENT_SOURCE_MS = 1000
/**
 * A partial holder is slower than a whole-file holder, which may then be asked
 * for pieces the partial holder has, when its rate is this many times lower:
 * by then the whole-file holder's link is worth more than the bytes it sends.
 */
const SLOWER = 3
/** How long a swarming download waits, nothing in flight, for partial holders to get pieces no source has. */
const PARTIAL_ONLY_WAIT_MS = 30_000

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
  /** The writes under way (one writer at a time), or null. */
  private writer: Promise<void> | null = null
  private sinkError: { error: unknown } | null = null
  private lastError: unknown = null
  /** When the last source was declared dead (see TransferOptions.reconnectGraceMs). */
  private diedAt = 0
  private wake: (() => void) | null = null
  private readonly relay: RelayMode | null
  /** Swarming: finished pieces waiting to be written, and pieces written. */
  private readonly writeQueue: Piece[] = []
  private done = 0
  /** Swarming: the agreed piece hashes have come, and the pieces that landed before were checked against them. */
  private hashesChecked = false
  /** Swarming: pieces written unhashed are being read back and checked. */
  private checkingWritten = false

  /**
   * Fetches `ranges` (in ascending order) when given, written over what the
   * sink holds there: a repair. Else the rest of the file after sink.written.
   */
  constructor (entry: FileEntry, sink: Sink, deps: TransferDeps, opts: Partial<TransferOptions> = {}, ranges?: ReadonlyArray<{ offset: number, length: number }>, relay?: RelayMode) {
    this.entry = entry
    this.sink = sink
    this.deps = deps
    this.opts = transferOptions(opts)
    this.log = deps.logger ?? debugLogger('distswarm:transfer')
    this.relay = relay && !ranges && sink.allowGaps === true ? relay : null
    const size = this.opts.rangeSize
    const add = (offset: number, length: number): void => {
      this.pieces.push({ offset, length, attempts: new Set(), data: null, from: null, index: Math.floor(offset / size), written: false, verified: false, hash: null, unchecked: false })
    }
    // Swarming cuts pieces where the piece hashes do: a resumed prefix is taken up to its last whole piece.
    const first = this.relay ? sink.written - sink.written % size : sink.written
    if (ranges) for (const r of ranges) add(r.offset, r.length)
    else for (let offset = first; offset < entry.size; offset += size) add(offset, Math.min(size, entry.size - offset))
  }

  /**
   * Runs to the end. Resolves to where each byte written came from; rejects
   * with the sink's own error when writing failed, else with ERR_NOT_FOUND
   * or ERR_ALL_SOURCES_FAILED when no source is left to ask. Bytes written
   * before a failure stay in the sink.
   */
  async run (): Promise<PieceSource[]> {
    let idleSince: number | null = null
    try {
      for (;;) {
        if (this.sinkError) throw this.sinkError.error
        if (this.complete()) return this.provenance
        this.checkEarlyPieces()
        this.refreshSources()
        this.assign()
        const inflight = this.pieces.some((p) => p.attempts.size > 0)
        if (!inflight && this.writer === null && !this.complete()) {
          const waiting = [...this.sources.values()].filter((s) => !s.failed && !s.peer.closed)
          if (waiting.length === 0 && !this.awaitingReconnect()) {
            if (this.sources.size === 0) throw SwarmError.NOT_FOUND(this.entry.name)
            throw SwarmError.ALL_SOURCES_FAILED(this.entry.name, this.lastError)
          }
          // Swarming with partial holders only, none of which has what is missing: they may get it, for a while.
          idleSince ??= Date.now()
          if (this.relay && Date.now() - idleSince > PARTIAL_ONLY_WAIT_MS) throw SwarmError.ALL_SOURCES_FAILED(this.entry.name, this.lastError ?? SwarmError.NOT_FOUND(`the rest of ${this.entry.name}`))
        } else idleSince = null
        await new Promise<void>((resolve) => {
          this.wake = resolve
          setTimeout(resolve, TICK_MS).unref()
        })
        this.wake = null
      }
    } catch (err) {
      await this.keepPrefix()
      throw err
    } finally {
      for (const p of this.pieces) for (const a of p.attempts) a.abort.abort()
    }
  }

  private complete (): boolean {
    if (this.relay) return this.done === this.pieces.length && this.writer === null
    return this.head === this.pieces.length && this.writer === null
  }

  /** A swarming transfer that fails leaves only its gapless prefix, which a later attempt resumes from. */
  private async keepPrefix (): Promise<void> {
    if (!this.relay || this.sinkError || !this.sink.truncate) return
    const gap = this.pieces.find((p) => !p.written)
    if (!gap || gap.offset >= this.sink.written) return
    // A write under way finishes first.
    await this.writer
    await this.sink.truncate(gap.offset).catch((err: unknown) => this.log.debug('transfer.truncate-failed', { name: this.entry.name, why: (err as Error).message }))
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
    const whole = this.deps.holders()
    const partial = this.relay ? this.deps.partialHolders?.() ?? [] : []
    const seen = new Set<string>()
    const take = (peer: Peer, has: Source['has']): void => {
      if (seen.has(peer.publicKeyHex)) return
      seen.add(peer.publicKeyHex)
      const known = this.sources.get(peer.publicKeyHex)
      // A peer that reconnected is a new connection: give it a fresh chance.
      if (!known || (known.peer !== peer && known.peer.closed)) {
        this.sources.set(peer.publicKeyHex, { peer, inflight: 0, rate: 0, failed: false, died: false, busyUntil: 0, busy: 0, linkLost: false, has })
      } else known.has = has
    }
    for (const peer of whole) take(peer, null)
    for (const { peer, has } of partial) take(peer, has)
    // A partial holder whose map was withdrawn (its download ended) holds nothing we know of.
    if (this.relay) for (const s of this.sources.values()) if (!seen.has(s.peer.publicKeyHex) && s.has !== null) s.has = () => false
  }

  /** Gives free request slots pieces: new pieces first, in order; when none is due, a second attempt at a held-up one. */
  private assign (): void {
    const now = Date.now()
    const usable = [...this.sources.values()].filter((s) => !s.failed && !s.peer.closed)
    // A source whose link just died, or that went silent, is asked only when no other source is left.
    const doubtful = (s: Source): boolean => s.linkLost || this.deps.via(s.peer).silentMs >= SILENT_SOURCE_MS
    const trusted = usable.some((s) => !doubtful(s))
    // Swarming with partial holders about: a whole-file holder (the seeder, most often) gets one piece at a time
    // from each downloader, so the pieces it sends finish sooner and spread, and fewer are asked of it twice.
    const swarming = this.relay !== null && usable.some((s) => s.has !== null)
    const window = (s: Source): number => swarming && s.has === null ? 1 : this.opts.window
    const ready = usable
      .filter((s) => (!trusted || !doubtful(s)) && s.busyUntil <= now && s.inflight < window(s))
      // Faster sources first, seeders counting double; one not yet measured
      // is tried early, so it gets measured; among equals, seeders first.
      .sort((a, b) => score(b) - score(a) || Number(b.peer.remoteSeeder) - Number(a.peer.remoteSeeder))
    const limit = Math.min(this.pieces.length, this.head + this.opts.maxAhead)
    // Swarming: the partial holders that may take a piece a whole-file holder would otherwise send.
    const partial = this.relay ? usable.filter((s) => s.has !== null && !doubtful(s)) : []
    for (let progress = true; progress;) {
      progress = false
      for (const source of ready) {
        if (source.inflight >= window(source)) continue
        const piece = (this.relay ? this.nextRarest(source, usable, partial) : this.nextFresh(limit)) ?? this.nextHedge(source, now)
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

  /**
   * Swarming: a piece this source holds that no one is asked for, the one
   * the fewest sources hold (random among equals, so downloaders ask for
   * different ones); the first one while no partial holder is about. A whole-file holder is not
   * asked for a piece a partial holder has, unless that holder is slower.
   * Pieces in memory (in flight or waiting to be written) stay under maxAhead.
   */
  private nextRarest (source: Source, usable: Source[], partial: Source[]): Piece | undefined {
    const held = this.pieces.reduce((n, p) => n + (p.attempts.size > 0 || p.data !== null ? 1 : 0), 0)
    if (held >= this.opts.maxAhead) return undefined
    let best: Piece[] = []
    let rarest = Infinity
    // Nobody else is downloading it (that we know of): in order, so a download that stops keeps a long prefix to resume from.
    const alone = partial.length === 0
    for (const p of this.pieces) {
      if (p.written || p.data !== null || p.attempts.size > 0) continue
      if (source.has && !source.has(p.index)) continue
      if (source.has === null && partial.some((s) => s.has!(p.index) && !(s.rate * SLOWER < source.rate))) continue
      if (alone) return p
      const count = usable.reduce((n, s) => n + (s.has === null || s.has(p.index) ? 1 : 0), 0)
      if (count < rarest) { rarest = count; best = [p] } else if (count === rarest) best.push(p)
    }
    return best[Math.floor(Math.random() * best.length)]
  }

  /** The lowest piece in flight at one other source for longer than hedgeAfterMs and twice what that source's rate predicts. */
  private nextHedge (source: Source, now: number): Piece | undefined {
    for (let i = this.head; i < this.pieces.length; i++) {
      const p = this.pieces[i]!
      if (p.data !== null || p.written || p.attempts.size !== 1) continue
      if (source.has && !source.has(p.index)) continue
      const only = p.attempts.values().next().value!
      if (only.source === source) continue
      // Swarming: a whole-file holder takes over a partial holder's piece only when that holder went silent.
      if (this.relay && source.has === null && only.source.has !== null && only.conn.silentMs < SILENT_SOURCE_MS) continue
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
    if (piece.data !== null || piece.written) return
    const ms = Math.max(1, Date.now() - attempt.startedAt)
    const rate = piece.length / ms
    attempt.source.busy = 0
    attempt.source.linkLost = false
    attempt.source.rate = attempt.source.rate === 0 ? rate : 0.7 * attempt.source.rate + 0.3 * rate
    if (this.relay && !this.checkPiece(piece, attempt)) return
    piece.data = attempt.chunks
    piece.from = attempt.source.peer.publicKeyHex
    for (const other of piece.attempts) if (other !== attempt) other.abort.abort()
    if (this.relay) this.writeQueue.push(piece)
    this.startWriter()
  }

  /** Starts the writer unless it runs: one write at a time, until no finished piece waits. */
  private startWriter (): void {
    if (this.writer !== null) return
    this.writer = (this.relay ? this.drainQueue() : this.drainWrites()).finally(() => {
      this.writer = null
      // A piece that finished while the writer was ending.
      if (!this.sinkError && (this.relay ? this.writeQueue.length > 0 : this.pieces[this.head]?.data)) this.startWriter()
      this.notify()
    })
  }

  /**
   * Swarming: a piece against its agreed hash. A partial holder's wrong
   * piece is refused and blamed, and the holder dropped from this transfer;
   * a whole-file holder's is kept unrelayed, for the whole-file check and
   * its diagnosis to judge, as without swarming.
   */
  private checkPiece (piece: Piece, attempt: Attempt): boolean {
    if (attempt.source.has === null && !this.relay!.wanted()) {
      piece.unchecked = true
      return true
    }
    const hashes = this.relay!.hashes()
    if (!hashes) {
      // Only whole-file holders are asked before the hashes come (see RelayMode): checked when they do.
      piece.hash = pieceHash(attempt.chunks)
      return true
    }
    const want = hashes[piece.index]
    if (!want) return true
    if (pieceHash(attempt.chunks).equals(want)) {
      piece.verified = true
      return true
    }
    const source = attempt.source
    if (source.has === null) return true
    source.failed = true
    this.lastError = SwarmError.PROTOCOL_VIOLATION(`relayed piece ${piece.index} does not match its hash`)
    this.log.warn('transfer.bad-relayed-piece', { name: this.entry.name, piece: piece.index, peer: source.peer.label })
    for (const p of this.pieces) for (const a of p.attempts) if (a.source === source && a !== attempt) a.abort.abort()
    this.relay!.onFault(source.peer.publicKeyHex, `relayed piece ${piece.index} of ${this.entry.name} did not match its piece hash`)
    return false
  }

  /** Swarming: once the agreed hashes came, the pieces that landed before them are checked, and those that match may be relayed. */
  private checkEarlyPieces (): void {
    if (!this.relay) return
    const hashes = this.relay.hashes()
    if (!hashes) return
    if (!this.hashesChecked) {
      this.hashesChecked = true
      for (const p of this.pieces) {
        if (p.hash === null) continue
        p.verified = hashes[p.index]?.equals(p.hash) === true
        p.hash = null
        if (p.verified && p.written) this.relay.onHave(p.index)
      }
    }
    if (!this.checkingWritten && this.sink.hashPieces && this.relay.wanted() && this.pieces.some((p) => p.unchecked && p.written)) void this.checkWritten(hashes)
  }

  /** Swarming: pieces written while no one else wanted the file, read back, checked, and offered when they match. */
  private async checkWritten (hashes: ReadonlyArray<Buffer | null>): Promise<void> {
    this.checkingWritten = true
    try {
      const size = this.opts.rangeSize
      const todo = this.pieces.filter((p) => p.unchecked && p.written)
      for (const p of todo) p.unchecked = false
      // Runs of consecutive pieces, one read-back each.
      for (let i = 0; i < todo.length;) {
        let j = i + 1
        while (j < todo.length && todo[j]!.index === todo[j - 1]!.index + 1) j++
        const first = todo[i]!
        const last = todo[j - 1]!
        const got = await this.sink.hashPieces!(first.offset, last.offset + last.length - first.offset, size)
        for (let k = i; k < j; k++) {
          const p = todo[k]!
          p.verified = hashes[p.index]?.equals(got[k - i] ?? Buffer.alloc(0)) === true
          if (p.verified) this.relay!.onHave(p.index)
        }
        i = j
      }
    } catch (err) {
      this.log.debug('transfer.check-written-failed', { name: this.entry.name, why: (err as Error).message })
    } finally {
      this.checkingWritten = false
    }
  }

  /** Swarming: writes finished pieces where they belong, one write at a time; a verified one may then be relayed. */
  private async drainQueue (): Promise<void> {
    for (let p = this.writeQueue.shift(); p && !this.sinkError; p = this.writeQueue.shift()) {
      if (!await this.writePiece(p)) break
      p.written = true
      this.done++
      if (p.verified) this.relay!.onHave(p.index)
    }
  }

  /** Writes a finished piece to the sink and lets go of its bytes; false (sinkError set) when the sink failed. */
  private async writePiece (p: Piece): Promise<boolean> {
    try {
      await this.sink.write(p.data!, p.offset)
    } catch (error) {
      this.sinkError = { error }
      return false
    }
    this.provenance.push({ offset: p.offset, length: p.length, source: p.from! })
    // Written and let go of: the link's receive buffers under them take the next records.
    if (this.sink.releasesChunks === true) for (const c of p.data!) recycle(c)
    p.data = null
    return true
  }

  private failed (piece: Piece, attempt: Attempt, conn: Peer, err: unknown): void {
    if (attempt.abort.signal.aborted) return
    const source = attempt.source
    const code = (err as { code?: string }).code
    if (code === 'ERR_REMOTE_BUSY' && ++source.busy < (this.relay ? MAX_BUSY_SWARMING : MAX_BUSY)) {
      source.busyUntil = Date.now() + (this.relay ? SWARMING_BUSY_BACKOFF_MS : BUSY_BACKOFF_MS)
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
    for (let p = this.pieces[this.head]; p?.data && !this.sinkError; p = this.pieces[this.head]) {
      if (!await this.writePiece(p)) break
      this.head++
    }
  }
}

/** Distinct sources of a download, in order of first appearance. */
export function sourcesOf (pieces: readonly PieceSource[]): string[] {
  return [...new Set(pieces.map((p) => p.source))]
}
