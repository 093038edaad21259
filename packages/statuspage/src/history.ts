import { StatusPageError } from './errors.js'

/** An hour of 10 s samples. */
export const HISTORY_SAMPLES = 360

/** Byte counters that only grow while the agent runs. */
export interface TrafficTotals {
  /** bytes from peers: finished fetches plus what the transfers in flight have written */
  fromPeers: number
  /** bytes portage-fetch's fallback reported downloading upstream */
  upstream: number
  /** bytes served to peers */
  served: number
}

/** The growth of the totals over one interval, ending at `at`. */
export interface TrafficSample extends TrafficTotals {
  /** end of the interval, ms since the epoch */
  at: number
  /** length of the interval, ms */
  ms: number
}

export interface TrafficHistoryInit {
  /** Samples kept; the oldest goes when one more arrives. Default HISTORY_SAMPLES. */
  capacity?: number
}

const KEYS = ['fromPeers', 'upstream', 'served'] as const

/**
 * The traffic of the last `capacity` intervals in a fixed ring: memory stays
 * bounded however long the agent runs. Each record() after the first adds
 * one sample: the growth of each counter since the previous record.
 */
export class TrafficHistory {
  readonly capacity: number
  private readonly ring: Array<TrafficSample | undefined>
  private next = 0
  private count = 0
  private last: { at: number, totals: TrafficTotals } | null = null

  constructor (init: TrafficHistoryInit = {}) {
    const capacity = init.capacity ?? HISTORY_SAMPLES
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 100_000) {
      throw StatusPageError.INVALID_OPTION('capacity', 'must be an integer from 1 to 100000')
    }
    this.capacity = capacity
    this.ring = new Array<TrafficSample | undefined>(capacity)
  }

  /**
   * Takes the totals seen at `at` (ms). A counter that went down (the agent
   * restarted, a failed transfer's bytes left the count) grew by 0 in that
   * interval: the chart never shows negative traffic. Returns the sample
   * added, or null for the first record (it only sets the baseline) and for
   * a time that does not move forward.
   */
  record (totals: TrafficTotals, at: number): TrafficSample | null {
    const prev = this.last
    if (prev !== null && at <= prev.at) return null
    this.last = { at, totals: { ...totals } }
    if (prev === null) return null
    const sample: TrafficSample = { at, ms: at - prev.at, fromPeers: 0, upstream: 0, served: 0 }
    for (const k of KEYS) sample[k] = Math.max(0, totals[k] - prev.totals[k])
    this.ring[this.next] = sample
    this.next = (this.next + 1) % this.capacity
    this.count = Math.min(this.count + 1, this.capacity)
    return sample
  }

  get size (): number {
    return this.count
  }

  /** The samples kept, oldest first. */
  samples (): TrafficSample[] {
    const out: TrafficSample[] = []
    const start = (this.next - this.count + this.capacity) % this.capacity
    for (let i = 0; i < this.count; i++) out.push(this.ring[(start + i) % this.capacity]!)
    return out
  }
}
