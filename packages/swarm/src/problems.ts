import type { Logger } from '@distswarm/protocol'

/** Something the user most likely got wrong, seen at an address. */
export interface Problem {
  /** When it was last seen (ms since the epoch). */
  at: number
  /** Event name, as logged: `peer.wrong-network-key`, `static-peer.unreachable`, `bootstrap.unreachable`, … */
  event: string
  /** host:port (or host, for connections that came in) it concerns. */
  address: string
  /** The likely cause, in words a user can act on. */
  cause: string
  /** Times seen since it was first logged. */
  count: number
}

/** A problem is logged once per event and address in this long; it is still counted meanwhile. */
export const PROBLEM_LOG_INTERVAL_MS = 60_000
/** Recent problems kept for problems(); the oldest go first. */
export const MAX_PROBLEMS = 32

/**
 * Mistakes that would otherwise be silent (a wrong network key, a wrong
 * --peer port, an unreachable bootstrap node): each a `warn` line naming the
 * address and the likely cause, at most once a minute per address, and a
 * short list of recent ones for the agent's status.
 */
export class Problems {
  private readonly recent = new Map<string, Problem & { loggedAt: number }>()

  constructor (private readonly log: Logger, private readonly intervalMs = PROBLEM_LOG_INTERVAL_MS) {}

  report (event: string, address: string, cause: string, fields: Record<string, string | number> = {}): void {
    const key = `${event} ${address}`
    const now = Date.now()
    const known = this.recent.get(key)
    this.recent.delete(key) // re-inserted last: the map stays in order of last sighting
    const p = known ?? { at: now, event, address, cause, count: 0, loggedAt: 0 }
    p.at = now
    p.cause = cause
    p.count++
    this.recent.set(key, p)
    if (this.recent.size > MAX_PROBLEMS) this.recent.delete(this.recent.keys().next().value!)
    if (now - p.loggedAt < this.intervalMs) return
    p.loggedAt = now
    this.log.warn(event, { address, cause, ...fields, ...(p.count > 1 ? { times: p.count } : {}) })
  }

  /** Recent problems, the latest first. */
  list (): Problem[] {
    return [...this.recent.values()].reverse().map(({ loggedAt: _, ...p }) => p)
  }
}
