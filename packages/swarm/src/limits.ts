import { intOption } from './options.js'
import { TokenBucket } from './rate.js'

/** Tunables of one connection. Every field has a default. */
export interface PeerLimits {
  /**
   * Time for the remote hello to arrive after the connection opens. Default 5 s.
   * On a LAN it takes milliseconds. Short on purpose: should a connection go
   * silent from the start (seen with hyperdht's firewall probing), hyperswarm
   * refuses every newer connection between the two as a duplicate of it,
   * until we drop it.
   */
  helloTimeoutMs?: number
  /** Time a request may go without receiving a byte. Default 30 s. */
  requestTimeoutMs?: number
  /** Requests from the remote queued for upload; more are answered BUSY. Default 16. */
  maxQueuedUploads?: number
  /**
   * Budget: entries one peer may advertise; more and it is cut off
   * (ERR_PEER_OVER_BUDGET). Default 150 000 (::gentoo has ~70 000 distfiles).
   */
  maxRemoteEntries?: number
  /**
   * Budget: memory one peer's inventory may take in the entry pool (each
   * entry's digests, name and bookkeeping, ~190 bytes for a typical name,
   * ~410 at the 255-byte limit), counting entries it shares with others in
   * full; more and it is cut off. Default 24 MiB (all of ::gentoo is ~13 MiB).
   */
  maxRemoteInventoryBytes?: number
  /**
   * Budget of all peers together: memory the distinct entries of every
   * inventory may take (shared entries counted once). Past it, the peer
   * whose entries no one else holds take the most is cut off, so a few
   * peers at their own budget cannot add up past the agent's memory
   * target. Default 32 MiB: ~175 000 distinct entries of typical names (10
   * peers with 70 000 entries each, half of them shared, take ~26 MiB).
   */
  maxPoolBytes?: number
  /**
   * Budget: requests (and cancels) a second from the remote, on average,
   * bursts of twice that, past which it is cut off. Requests beyond
   * requestsPerSecond are only answered BUSY; a peer that keeps asking at
   * ten times that rate ignores the answers: a flood. Default 1000.
   */
  maxRequestsPerSecond?: number
  /** Budget: hash requests a minute (bursts of as many), each of which reads a whole range of a file; past it the remote is cut off. Default 60. */
  maxHashRequestsPerMinute?: number
  /** Budget: piece-map deltas a second (bursts of twice that), for the piece maps of swarming downloads: see Peer.chargePieceMap. Default 1000. */
  maxPieceMapDeltasPerSecond?: number
  /** Time an upload may wait for the remote to read (backpressure) before we drop it: a peer that never reads would hold the upload slot forever. Default 30 s. */
  uploadStallMs?: number
  /** Requests accepted per second, on average (bursts of twice that); more are answered BUSY. Default 100. */
  requestsPerSecond?: number
  /**
   * While requests of ours are out on a connection (and after, until the
   * remote next shows life), the remote must show life this often: on
   * hyperswarm (UDX) any packet, if only the acknowledgement of the
   * keepalive we send every third of it; on TCP any bytes, if only the
   * answer to the Ping we send as often. A remote silent this long is dead
   * (killed, frozen, unplugged): the connection is dropped with
   * ERR_PEER_DEAD, so a transfer moves on at once instead of waiting for the
   * stream's own timeout (~15 s on UDX, minutes on TCP). Default 3 s.
   */
  deadAfterMs?: number
  /** Binary packages one peer may advertise (Builds); more are ignored, with a warning. Default 100 000. */
  maxRemoteBuilds?: number
  /** Bytes of the stanzas of one peer's builds, together; past it further builds are ignored, with a warning. Default 256 MiB. */
  maxRemoteBuildBytes?: number
}

export const DEFAULT_LIMITS: Readonly<Required<PeerLimits>> = {
  helloTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  maxQueuedUploads: 16,
  maxRemoteEntries: 150_000,
  maxRemoteInventoryBytes: 24 * 1024 * 1024,
  maxPoolBytes: 32 * 1024 * 1024,
  maxRequestsPerSecond: 1000,
  maxHashRequestsPerMinute: 60,
  maxPieceMapDeltasPerSecond: 1000,
  uploadStallMs: 30_000,
  requestsPerSecond: 100,
  deadAfterMs: 3_000,
  maxRemoteBuilds: 100_000,
  maxRemoteBuildBytes: 256 * 1024 * 1024
}

/** Checks connection limits, filling defaults (ERR_INVALID_OPTION naming a bad one). */
export function peerLimits (limits: PeerLimits = {}): Required<PeerLimits> {
  const out = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof PeerLimits>) {
    const value = limits[key]
    if (value !== undefined) out[key] = intOption(`limits.${key}`, value, 1)
  }
  // A third of it is the keepalive interval: below that timers would spin.
  intOption('limits.deadAfterMs', out.deadAfterMs, 300)
  return out
}

/** What a peer may spend, by name: the `budget` field of its ERR_PEER_OVER_BUDGET and peer.over-budget warning. */
export type BudgetName = 'inventory-entries' | 'inventory-bytes' | 'pool-bytes' | 'requests' | 'hash-requests' | 'piece-map-deltas'

/**
 * The rate budgets of one connection (the inventory budgets are checked
 * against its PeerFiles): each charge returns the budget it broke, or null.
 */
export class RateBudgets {
  private readonly requests: TokenBucket
  private readonly hashRequests: TokenBucket
  private readonly pieceMapDeltas: TokenBucket

  constructor (limits: Required<PeerLimits>, now: () => number = Date.now) {
    this.requests = new TokenBucket(2 * limits.maxRequestsPerSecond, limits.maxRequestsPerSecond, now)
    this.hashRequests = new TokenBucket(limits.maxHashRequestsPerMinute, limits.maxHashRequestsPerMinute / 60, now)
    this.pieceMapDeltas = new TokenBucket(2 * limits.maxPieceMapDeltasPerSecond, limits.maxPieceMapDeltasPerSecond, now)
  }

  /** A Request or Cancel from the remote. */
  request (): BudgetName | null {
    return this.requests.take() ? null : 'requests'
  }

  /** A HashRequest from the remote: counts as a request too. */
  hashRequest (): BudgetName | null {
    if (!this.requests.take()) return 'requests'
    return this.hashRequests.take() ? null : 'hash-requests'
  }

  /** `n` piece-map deltas from the remote. */
  pieceMap (n: number): BudgetName | null {
    for (let i = 0; i < n; i++) if (!this.pieceMapDeltas.take()) return 'piece-map-deltas'
    return null
  }
}
