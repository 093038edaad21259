/**
 * Verified acquisition, end to end: a file some peers hold is downloaded
 * (the swarm's Transfer schedules the pieces), checked whole, and published
 * only when its size and hashes match; when the check fails, the holders'
 * piece hashes say which pieces were wrong and who sent them (repair.ts), the
 * senders are blamed (a fault each; MAX_FAULTS bans the peer for BAN_MS) and
 * the wrong pieces are fetched again from the others, for MAX_ROUNDS rounds
 * at most. Everything that happens is an event; metrics and logs listen.
 */
import { EventEmitter } from 'node:events'
import { debugLogger, toHex, type FileEntry, type Logger } from '@distswarm/protocol'
import { StoreError, type Download, type LocalFile, type PieceRange, type Store } from '@distswarm/store'
import { SwarmError, type DistSwarm, type PieceSource } from '@distswarm/swarm'
import type { FetchResult, FileInfo, TransferInfo } from './api.js'
import { AgentError } from './errors.js'
import { fileInfo } from './files.js'
import { Penalties, type PenaltiesInit } from './penalties.js'
import { planRepair } from './repair.js'

/** Download rounds of one fetch at most: each after a failed whole-file check goes without the peers it found wrong. */
export const MAX_ROUNDS = 4

/** What the Fetcher needs of the swarm. */
export type FetchSwarm = Pick<DistSwarm, 'find' | 'download' | 'report' | 'disconnect' | 'rangeSize' | 'pieceHashes'>

export interface FetcherInit {
  store: Pick<Store, 'begin' | 'commit' | 'hashWritten'>
  swarm: FetchSwarm
  /** Default debugLogger('distswarm:agent:fetch'). */
  logger?: Logger
  /** Download rounds of one fetch at most. Default MAX_ROUNDS. */
  maxRounds?: number
  /** When a peer is banned and for how long (see Penalties), or a book shared with another Fetcher (builds and distfiles blame peers alike). */
  penalties?: PenaltiesInit | Penalties
  /** Awaited after each publish, while the file still counts as in flight (so pinned): the agent applies its quota here. */
  afterPublish?: () => Promise<void>
}

/** What to fetch: the file (hex digests), the name to publish it under and a SHA512 to check. */
export interface FetchWant {
  /** the name to publish under */
  name: string
  /**
   * hex SHA512 to check besides size and BLAKE2B: for a caller whose only
   * anchor it is (it named no BLAKE2B). undefined: BLAKE2B alone, and the
   * SHA512 is not computed (see docs/architecture.md, "Checked").
   */
  sha512: string | undefined
  /** when the request came (ms since the epoch), for durationMs */
  started: number
}

export interface FaultEvent { peer: string, faults: number, why: string, name: string, blake2b: string }
export interface BanEvent { peer: string, faults: number, until: number, error: SwarmError }
export interface VerificationFailedEvent { name: string, blake2b: string, round: number, problem: string }
export interface FetchFailedEvent { name: string, blake2b: string, error: unknown }

export interface FetcherEvents {
  /** bytes from a peer failed verification, and it was blamed */
  fault: [FaultEvent]
  /** a peer reached MAX_FAULTS: disconnected and refused until `until` */
  banned: [BanEvent]
  /** a download's whole-file check failed (it is repaired, or the fetch fails) */
  'verification-failed': [VerificationFailedEvent]
  /** a fetched file was verified and published */
  published: [FetchResult]
  /** a download failed (not found, every source failed, verification, disk) */
  failed: [FetchFailedEvent]
}

interface Transfer { name: string, blake2b: string, size: number, startedAt: number, download: Download | null }

export class Fetcher extends EventEmitter<FetcherEvents> {
  private readonly store: FetcherInit['store']
  private readonly swarm: FetchSwarm
  private readonly log: Logger
  private readonly maxRounds: number
  private readonly penalties: Penalties
  private readonly afterPublish: () => Promise<void>
  private state: 'new' | 'started' | 'stopped' = 'new'
  private readonly inFlight = new Map<string, Promise<FetchResult>>()
  /** The downloads under way, by hex digest, for status (entries leave with their inFlight entry). */
  private readonly transfers = new Map<string, Transfer>()
  private readonly counters = { completed: 0, failed: 0, bytesFetched: 0 }

  constructor (init: FetcherInit) {
    super()
    this.store = init.store
    this.swarm = init.swarm
    this.log = init.logger ?? debugLogger('distswarm:agent:fetch')
    this.maxRounds = init.maxRounds ?? MAX_ROUNDS
    if (!Number.isSafeInteger(this.maxRounds) || this.maxRounds < 1) throw AgentError.INVALID_OPTION('maxRounds', `must be a positive integer, not ${String(init.maxRounds)}`)
    this.penalties = init.penalties instanceof Penalties ? init.penalties : new Penalties(init.penalties)
    this.afterPublish = init.afterPublish ?? (async () => {})
  }

  /** Takes fetches from now on. Idempotent. */
  start (): void {
    if (this.state === 'new') this.state = 'started'
  }

  /** Takes no more fetches (those under way end as the swarm and store they use close). Idempotent. */
  stop (): void {
    this.state = 'stopped'
  }

  /** Whether a fetch of this hex digest is under way: its file must not be evicted. */
  isFetching (blake2b: string): boolean {
    return this.inFlight.has(blake2b)
  }

  /** Verification faults of a peer so far (0 when none). */
  faultsOf (publicKeyHex: string): number {
    return this.penalties.faultsOf(publicKeyHex)
  }

  /** Whether a peer is banned now: the swarm neither connects to it nor asks it for files. */
  isBanned (publicKeyHex: string): boolean {
    return this.penalties.isBanned(publicKeyHex)
  }

  stats (): { inFlight: number, completed: number, failed: number, bytesFetched: number } {
    return { inFlight: this.inFlight.size, ...this.counters }
  }

  /** The downloads under way. */
  underWay (): TransferInfo[] {
    return [...this.transfers.values()].map((t) => ({
      name: t.name, blake2b: t.blake2b, size: t.size, bytesDone: t.download?.written ?? 0, startedAt: new Date(t.startedAt).toISOString()
    }))
  }

  /**
   * Fetches `target` from the peers that hold it, verified, into the cache
   * dir. Concurrent calls for one file share one download.
   */
  fetch (target: FileInfo, want: FetchWant): Promise<FetchResult> {
    if (this.state !== 'started') return Promise.reject(AgentError.NOT_STARTED('the fetcher'))
    let pending = this.inFlight.get(target.blake2b)
    if (!pending) {
      pending = this.download(target, want).finally(() => this.inFlight.delete(target.blake2b))
      this.inFlight.set(target.blake2b, pending)
    }
    return pending
  }

  private async download (target: FileInfo, want: FetchWant): Promise<FetchResult> {
    const entry = this.swarm.find({ blake2b: target.blake2b })[0]?.entry
    if (!entry) throw SwarmError.NOT_FOUND(target.name)
    const transfer: Transfer = { name: want.name, blake2b: target.blake2b, size: entry.size, startedAt: want.started, download: null }
    this.transfers.set(target.blake2b, transfer)
    try {
      const download = transfer.download = await this.store.begin({
        name: want.name,
        size: entry.size,
        blake2b: entry.blake2b,
        sha512: want.sha512 !== undefined ? Buffer.from(want.sha512, 'hex') : undefined
      })
      const file = await this.rounds(entry, download, want.name)
      // Still in flight, so pinned: the quota may take other files, never the one this fetch is about to return.
      await this.afterPublish()
      const result: FetchResult = {
        ...fileInfo(file), path: file.path, source: 'swarm', durationMs: Date.now() - want.started, resumedFrom: download.resumedFrom
      }
      this.counters.completed++
      this.counters.bytesFetched += file.size
      this.emit('published', result)
      return result
    } catch (err) {
      this.counters.failed++
      this.emit('failed', { name: want.name, blake2b: target.blake2b, error: err })
      throw err
    } finally {
      this.transfers.delete(target.blake2b)
    }
  }

  /** Downloads, checks and repairs until the file verifies, then publishes it; aborts the download on failure, or keeps its bytes to resume. */
  private async rounds (entry: FileEntry, download: Download, name: string): Promise<LocalFile> {
    // Peers this fetch goes without: shown to have sent wrong bytes, or suspected of it.
    const excluded = new Set<string>()
    const hex = toHex(entry.blake2b)
    let kept = false
    try {
      // Gone without for one round when holders split evenly over some pieces (see Verdict.suspect).
      let suspect: string | null = null
      // Where each written piece came from, by offset.
      const from = new Map<number, PieceSource>()
      // The pieces to fetch again over wrong ones, or null for the rest of the file.
      let redo: PieceSource[] | null = null
      for (let round = 1; ; round++) {
        try {
          // Swarming: pieces land in any order, and a partial holder whose relayed piece fails its hash is blamed at once.
          download.allowGaps = redo === null
          const onFault = (key: string, why: string): void => this.blame(key, entry, why, excluded)
          for (const p of await this.swarm.download(entry, download, { exclude: excluded, ranges: redo ?? undefined, onFault })) from.set(p.offset, p)
        } catch (err) {
          if (redo === null) {
            // The sources failed, not the bytes: keep them for the next attempt to resume.
            // (Wrong sizes and full disks were discarded by the store already.)
            await download.suspend()
            kept = true
          }
          throw err
        }
        const problem = await download.verify()
        if (problem === null) break
        this.emit('verification-failed', { name, blake2b: hex, round, problem })
        this.log.info('fetch.verify-failed', { name, round, problem })
        // Size and BLAKE2B match: each holder sent what it advertised, and the SHA512 asked for is of other bytes. Nothing to mend, no one to blame.
        if (round === this.maxRounds || download.mismatch === 'sha512') throw StoreError.VERIFY_FAILED(name, problem)
        const pieces = [...from.values()].sort((a, b) => a.offset - b.offset)
        const hashOurs = (range: PieceRange): Promise<Buffer[]> => this.store.hashWritten(download, range)
        const next = await planRepair(this.swarm, download, entry, pieces, hashOurs)
        if (next.verdict) this.log.debug('fetch.diagnosis', { name, bad: next.verdict.bad.length, liars: next.verdict.liars.length, suspect: next.verdict.suspect?.slice(0, 8) })
        if (next.redo === null) {
          from.clear()
          this.log.info('fetch.restart', { name, why: problem, resumed: next.resumed || undefined })
        }
        redo = next.redo
        // The last round went without the suspect and still failed: it gets its turn back.
        if (suspect !== null) excluded.delete(suspect)
        for (const key of next.liars) this.blame(key, entry, problem, excluded)
        suspect = next.suspect
        if (suspect !== null) excluded.add(suspect)
        const others = this.swarm.find({ blake2b: hex })[0]?.holders.filter((p) => !excluded.has(p.publicKeyHex)) ?? []
        if (others.length === 0) throw StoreError.VERIFY_FAILED(name, problem)
        this.log.info('fetch.repair', { name, pieces: redo ? redo.length : 'all', peers: others.length })
      }
      // The round that went without the suspect verified: it was wrong.
      if (suspect !== null) this.blame(suspect, entry, 'bytes that disagreed with the verified file', excluded)
      return await this.store.commit(download)
    } catch (err) {
      if (!kept) await download.abort()
      throw err
    }
  }

  /** A peer sent wrong bytes of `entry`: a fault (a ban at MAX_FAULTS), it is told so, and this fetch goes without it. */
  private blame (key: string, entry: FileEntry, why: string, excluded: Set<string>): void {
    const penalty = this.penalties.penalize(key)
    const fault: FaultEvent = { peer: key, faults: penalty.faults, why, name: entry.name, blake2b: toHex(entry.blake2b) }
    this.log.warn('peer.fault', { peer: key.slice(0, 12), faults: penalty.faults, name: entry.name, why })
    this.emit('fault', fault)
    if (penalty.bannedUntil !== null) {
      const error = SwarmError.BANNED(key, penalty.faults)
      this.swarm.disconnect(key, error)
      if (penalty.banned) {
        this.log.warn('peer.banned', { peer: key.slice(0, 12), faults: penalty.faults, code: error.code, until: new Date(penalty.bannedUntil).toISOString() })
        this.emit('banned', { peer: key, faults: penalty.faults, until: penalty.bannedUntil, error })
      }
    }
    this.swarm.report(key, entry.blake2b)
    excluded.add(key)
  }
}
