/**
 * The cache quota: which cache files go first when the cache dir holds more
 * than it may (a pure ordering), and when each file was last used (kept in
 * memory, saved in the state dir).
 */
import { readFile } from 'node:fs/promises'
import { isHexDigest, type Logger } from '@distswarm/protocol'
import { byName } from './scan.js'
import type { StateFile, StateWriter } from './statefile.js'

/** One file of the cache dir, as eviction weighs it. */
export interface EvictionCandidate {
  path: string
  name: string
  size: number
  /** hex BLAKE2B */
  blake2b: string
  /** ms since the epoch: the later of its last recorded use and its mtime */
  usedAt: number
  /** a Manifest lists its name; without any Manifest index, every file counts as referenced */
  referenced: boolean
  /** connected peers that advertise its content; 0: this box may hold the network's last copy */
  peers: number
  /** a fetch is placing it or has not yet returned it: counted, never chosen */
  pinned: boolean
}

/** unreferenced: no Manifest lists its name; least-recently-used: the others, oldest use first. */
export type EvictionReason = 'unreferenced' | 'least-recently-used'

export interface EvictionChoice extends EvictionCandidate {
  reason: EvictionReason
}

export interface EvictionPlan {
  /** the quota; null: no limit, nothing is ever chosen */
  maxBytes: number | null
  /** bytes of every candidate */
  bytesBefore: number
  /** bytes left once the chosen are gone */
  bytesAfter: number
  /** how far bytesBefore is over the quota; 0 when within it */
  overBy: number
  /** in the order they go */
  chosen: EvictionChoice[]
}

/**
 * Where a file stands in the eviction order, lowest first: files some peer
 * also advertises before the ones it does not (the network keeps a copy),
 * then unreferenced names before referenced ones, then the least recently
 * used; the name breaks ties so the order never depends on listing order.
 */
export function compareForEviction (a: EvictionCandidate, b: EvictionCandidate): number {
  const rank = (c: EvictionCandidate): number => (c.peers === 0 ? 2 : 0) + (c.referenced ? 1 : 0)
  return rank(a) - rank(b) || a.usedAt - b.usedAt || byName(a, b)
}

/** The files to remove, in order, until the candidates fit in `maxBytes`; pinned ones are skipped. */
export function planEviction (candidates: readonly EvictionCandidate[], maxBytes: number | null): EvictionPlan {
  const bytesBefore = candidates.reduce((n, c) => n + c.size, 0)
  const overBy = maxBytes === null ? 0 : Math.max(0, bytesBefore - maxBytes)
  const chosen: EvictionChoice[] = []
  let freed = 0
  for (const c of [...candidates].sort(compareForEviction)) {
    if (freed >= overBy) break
    if (c.pinned) continue
    chosen.push({ ...c, reason: c.referenced ? 'least-recently-used' : 'unreferenced' })
    freed += c.size
  }
  return { maxBytes, bytesBefore, bytesAfter: bytesBefore - freed, overBy, chosen }
}

export const USES_FILE = 'cache-uses.json'
const USES_VERSION = 1
/** A use is saved at most this long after it. */
const USES_SAVE_DELAY_MS = 60_000

export interface UseTimesInit {
  /** Saves the times in the state dir (or nowhere, without one). */
  writer: StateWriter
  /** hex digests worth saving (those in the cache dir); the rest are dropped at each save. */
  live: () => Iterable<string>
  logger: Logger
}

/**
 * When each content (hex BLAKE2B) was last used: a fetch that found it
 * local, a peer's request for it. Saved as JSON in the state dir a minute
 * after a use at most (a use lost in a crash only makes that file look as
 * old as its mtime), and when the store stops.
 */
export class UseTimes {
  private readonly file: StateFile
  private readonly live: () => Iterable<string>
  private readonly logger: Logger
  private readonly times = new Map<string, number>()

  constructor (init: UseTimesInit) {
    this.live = init.live
    this.logger = init.logger
    this.file = init.writer.add({ name: USES_FILE, what: 'cache use times', delayMs: USES_SAVE_DELAY_MS, encode: () => this.encode() })
  }

  /** Reads the saved times; a missing or malformed file is an empty one. */
  async load (): Promise<void> {
    const path = this.file.path
    if (path === null) return
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('uses.ignored', { file: path, error: (err as Error).message })
      return
    }
    const uses = (parsed as { version?: unknown, uses?: unknown } | null)?.uses
    if ((parsed as { version?: unknown } | null)?.version !== USES_VERSION || typeof uses !== 'object' || uses === null) {
      this.logger.warn('uses.ignored', { file: path, error: `not a version ${USES_VERSION} use file` })
      return
    }
    for (const [hex, at] of Object.entries(uses)) {
      if (isHexDigest(hex) && typeof at === 'number' && Number.isFinite(at)) this.times.set(hex, Math.max(at, this.times.get(hex) ?? 0))
    }
  }

  get (hex: string): number | undefined {
    return this.times.get(hex)
  }

  touch (hex: string, at = Date.now()): void {
    if ((this.times.get(hex) ?? 0) >= at) return
    this.times.set(hex, at)
    this.file.markDirty()
  }

  /** The times of live digests, as JSON; only what eviction weighs is kept: uses of files long gone, or never in the cache dir, are dropped. */
  private encode (): Buffer {
    const uses: Record<string, number> = {}
    for (const hex of this.live()) {
      const at = this.times.get(hex)
      if (at !== undefined) uses[hex] = at
    }
    this.times.clear()
    for (const [hex, at] of Object.entries(uses)) this.times.set(hex, at)
    return Buffer.from(JSON.stringify({ version: USES_VERSION, uses }))
  }
}
