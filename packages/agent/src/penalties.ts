/**
 * The book of peers' verification faults: after MAX_FAULTS a peer is banned
 * for BAN_MS (the swarm asks isBanned() before it connects to a peer, takes
 * its connection or asks it for a file).
 */
import { AgentError } from './errors.js'

/** Verification faults before a peer is banned, and for how long. */
export const MAX_FAULTS = 3
export const BAN_MS = 10 * 60_000

export interface PenaltiesInit {
  /** Faults that ban a peer. Default MAX_FAULTS. */
  maxFaults?: number
  /** How long a ban lasts, in ms. Default BAN_MS. */
  banMs?: number
  /** The clock, in ms since the epoch. Default Date.now. */
  now?: () => number
}

/** What one penalty did: the peer's faults so far, and whether this one began a ban (a banned peer's fault only lengthens its ban). */
export interface Penalty {
  faults: number
  banned: boolean
  /** when the peer's ban ends (ms since the epoch), or null when it is not banned */
  bannedUntil: number | null
}

function positiveInteger (option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw AgentError.INVALID_OPTION(option, `must be a positive integer, not ${String(value)}`)
  return value
}

export class Penalties {
  private readonly maxFaults: number
  private readonly banMs: number
  private readonly now: () => number
  private readonly faults = new Map<string, { count: number, bannedUntil: number }>()

  constructor (init: PenaltiesInit = {}) {
    this.maxFaults = positiveInteger('maxFaults', init.maxFaults ?? MAX_FAULTS)
    this.banMs = positiveInteger('banMs', init.banMs ?? BAN_MS)
    this.now = init.now ?? Date.now
  }

  /** Verification faults of a peer so far (0 when none). */
  faultsOf (publicKeyHex: string): number {
    return this.faults.get(publicKeyHex)?.count ?? 0
  }

  isBanned (publicKeyHex: string): boolean {
    return (this.faults.get(publicKeyHex)?.bannedUntil ?? 0) > this.now()
  }

  /** Counts a fault; at maxFaults and every fault after, the peer is banned for banMs from now. */
  penalize (publicKeyHex: string): Penalty {
    const f = this.faults.get(publicKeyHex) ?? { count: 0, bannedUntil: 0 }
    const was = this.isBanned(publicKeyHex)
    f.count++
    this.faults.set(publicKeyHex, f)
    if (f.count < this.maxFaults) return { faults: f.count, banned: false, bannedUntil: was ? f.bannedUntil : null }
    f.bannedUntil = this.now() + this.banMs
    return { faults: f.count, banned: !was, bannedUntil: f.bannedUntil }
  }
}
