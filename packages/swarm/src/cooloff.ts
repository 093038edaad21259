/**
 * Cool-off: a peer cut off for an offence (a budget, a protocol violation)
 * is refused for a while, so that it cannot reconnect at once and start its
 * flood over. The first offence costs `baseMs`, each repeat twice the last,
 * up to `maxMs`; a key that keeps quiet for `forgetMs` starts over. Keyed by
 * the peer's public key: a member that makes itself new keys is cut off
 * anew by its budgets each time, one budget's worth of cost at most.
 */
import type { Code } from '@distswarm/protocol'

/** The codes of a connection closed for something the remote did wrong (not a dead link, not a timeout). */
const OFFENCES: ReadonlySet<Code> = new Set<Code>([
  'ERR_PEER_OVER_BUDGET', 'ERR_PROTOCOL_VIOLATION', 'ERR_FRAME_TOO_LARGE', 'ERR_DECODE', 'ERR_BAD_MESSAGE', 'ERR_INVALID_NAME', 'ERR_INVALID_DIGEST'
])

/** Keys remembered at most: past it the one whose cool-off ended longest ago (or soonest ends) is forgotten. */
const MAX_KEYS = 10_000

/** Whether `reason` (a closed connection's) is an offence that earns a cool-off. */
export function isOffence (reason: Error | null | undefined): boolean {
  const code = (reason as { code?: Code } | null | undefined)?.code
  return code !== undefined && OFFENCES.has(code)
}

export interface CoolOffInit {
  baseMs: number
  maxMs: number
  /** Quiet time after which a key's offences are forgotten. */
  forgetMs: number
  now?: () => number
}

interface Record {
  offences: number
  /** When the refusal ends. */
  until: number
  /** When the record may be forgotten. */
  forget: number
}

export class CoolOff {
  private readonly init: CoolOffInit
  private readonly now: () => number
  private readonly keys = new Map<string, Record>()

  constructor (init: CoolOffInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  /** Records an offence of `key`; returns how long it is refused now, and its offences so far. */
  offend (key: string): { ms: number, offences: number } {
    const now = this.now()
    const old = this.keys.get(key)
    const offences = old !== undefined && old.forget > now ? old.offences + 1 : 1
    const ms = Math.min(this.init.maxMs, this.init.baseMs * 2 ** Math.min(offences - 1, 40))
    // Re-inserted: the map's order is the order of last offence, so the oldest goes first when it is full.
    this.keys.delete(key)
    this.keys.set(key, { offences, until: now + ms, forget: now + ms + this.init.forgetMs })
    if (this.keys.size > MAX_KEYS) this.keys.delete(this.keys.keys().next().value!)
    return { ms, offences }
  }

  /** Time left in `key`'s cool-off, 0 when it may connect. */
  remaining (key: string): number {
    const r = this.keys.get(key)
    if (r === undefined) return 0
    const now = this.now()
    if (r.forget <= now) this.keys.delete(key)
    return Math.max(0, r.until - now)
  }

  get size (): number {
    return this.keys.size
  }
}
