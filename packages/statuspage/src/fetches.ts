import { StatusPageError } from './errors.js'

export const RECENT_FETCHES = 50

/** Longest file name kept: names come from peers and callers. */
const MAX_NAME_CHARS = 255

/**
 * How a fetch ended: `peers` the file came from the swarm, `local` the box
 * had it, `miss` no peer had it, `upstream` portage-fetch's fallback
 * downloaded it from a mirror, `failed` the swarm fetch failed otherwise.
 */
export type FetchOutcome = 'peers' | 'local' | 'miss' | 'upstream' | 'failed'

export interface FetchRecord {
  /** ISO 8601 */
  at: string
  name: string
  outcome: FetchOutcome
  /** file bytes, null when unknown */
  bytes: number | null
  durationMs: number | null
  /** the error code of a miss or failure */
  code: string | null
}

export type FetchRecordInput = Omit<FetchRecord, 'at' | 'bytes' | 'durationMs' | 'code'> & Partial<Pick<FetchRecord, 'bytes' | 'durationMs' | 'code'>> & { at?: Date | string }

const OUTCOMES: ReadonlySet<string> = new Set<FetchOutcome>(['peers', 'local', 'miss', 'upstream', 'failed'])

function count (n: unknown): number | null {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : null
}

/** The last `capacity` fetches, newest first, in bounded memory. */
export class RecentFetches {
  readonly capacity: number
  private readonly list: FetchRecord[] = []

  constructor (init: { capacity?: number } = {}) {
    const capacity = init.capacity ?? RECENT_FETCHES
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 10_000) {
      throw StatusPageError.INVALID_OPTION('capacity', 'must be an integer from 1 to 10000')
    }
    this.capacity = capacity
  }

  /** Adds one; a record of an unknown outcome or without a name is dropped (returns false). */
  add (r: FetchRecordInput): boolean {
    if (typeof r.name !== 'string' || r.name === '' || !OUTCOMES.has(r.outcome)) return false
    const at = r.at === undefined ? new Date() : new Date(r.at)
    this.list.unshift({
      at: Number.isNaN(at.getTime()) ? new Date().toISOString() : at.toISOString(),
      name: r.name.slice(0, MAX_NAME_CHARS),
      outcome: r.outcome,
      bytes: count(r.bytes),
      durationMs: count(r.durationMs),
      code: typeof r.code === 'string' ? r.code.slice(0, 64) : null
    })
    if (this.list.length > this.capacity) this.list.length = this.capacity
    return true
  }

  /** Newest first. */
  records (): FetchRecord[] {
    return this.list.slice()
  }
}
