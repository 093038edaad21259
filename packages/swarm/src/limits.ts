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
  /**
   * Budget: build entries (added and removed) a second in Builds messages,
   * on average, past a burst of maxRemoteBuilds (a full set on connect);
   * past it the remote is cut off. Each new entry costs a signature check
   * (~0.1 ms): a peer that streams builds past its budget would otherwise
   * keep a core busy. Default 1000.
   */
  maxBuildEntriesPerSecond?: number
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
  /**
   * Budget: binary packages one peer may advertise (Builds); more are
   * ignored, with a warning (ERR_BUILDS_LIMIT), the peer kept. Default
   * 20 000 (a Gentoo box has ~1 000-2 000 packages installed).
   */
  maxRemoteBuilds?: number
  /** Budget: signed bytes (stanzas, groups, digests) of one peer's builds, together; past it further builds are ignored, with a warning. Default 32 MiB (20 000 typical builds are ~21 MiB). */
  maxRemoteBuildBytes?: number
  /**
   * A peer cut off for an offence (a budget above, a protocol violation) is
   * refused for this long, twice that after its next offence, and so on up
   * to maxCoolOffMs; offences are forgotten after a day without one. Honest
   * peers never meet it. Default 30 s.
   */
  coolOffMs?: number
  /** The longest cool-off. Default 1 h. */
  maxCoolOffMs?: number
  /**
   * Budget of all peers together: memory the distinct builds of every peer
   * may take, each counted as its signed bytes plus 1.5 KiB (its objects and
   * its row of the merged index: see BUILD_OVERHEAD_BYTES in builds.ts);
   * past it new builds are ignored, with a warning. So 10 peers at their own
   * budgets cannot add up past it. Default 128 MiB: ~50 000 typical builds
   * (~1 KiB signed each), e.g. 10 boxes x 5 000; the agent's RSS grows by
   * about 1.5x the pool when it is full (docs/protocol.md, "Budgets").
   */
  maxBuildPoolBytes?: number
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
  maxBuildEntriesPerSecond: 1000,
  uploadStallMs: 30_000,
  requestsPerSecond: 100,
  deadAfterMs: 3_000,
  maxRemoteBuilds: 20_000,
  maxRemoteBuildBytes: 32 * 1024 * 1024,
  maxBuildPoolBytes: 128 * 1024 * 1024,
  coolOffMs: 30_000,
  maxCoolOffMs: 60 * 60_000
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
export type BudgetName = 'inventory-entries' | 'inventory-bytes' | 'pool-bytes' | 'requests' | 'hash-requests' | 'piece-map-deltas' | 'build-entries'

/** The limit of a rate budget, for its ERR_PEER_OVER_BUDGET. */
export function rateLimitOf (limits: Required<PeerLimits>, budget: BudgetName): number {
  switch (budget) {
    case 'requests': return limits.maxRequestsPerSecond
    case 'hash-requests': return limits.maxHashRequestsPerMinute
    case 'build-entries': return limits.maxBuildEntriesPerSecond
    default: return limits.maxPieceMapDeltasPerSecond
  }
}

/**
 * The rate budgets of one connection (the inventory budgets are checked
 * against its PeerFiles): each charge returns the budget it broke, or null.
 */
export class RateBudgets {
  private readonly requests: TokenBucket
  private readonly hashRequests: TokenBucket
  private readonly pieceMapDeltas: TokenBucket
  private readonly buildEntries: TokenBucket

  constructor (limits: Required<PeerLimits>, now: () => number = Date.now) {
    this.requests = new TokenBucket(2 * limits.maxRequestsPerSecond, limits.maxRequestsPerSecond, now)
    this.hashRequests = new TokenBucket(limits.maxHashRequestsPerMinute, limits.maxHashRequestsPerMinute / 60, now)
    this.pieceMapDeltas = new TokenBucket(2 * limits.maxPieceMapDeltasPerSecond, limits.maxPieceMapDeltasPerSecond, now)
    this.buildEntries = new TokenBucket(limits.maxRemoteBuilds + 2 * limits.maxBuildEntriesPerSecond, limits.maxBuildEntriesPerSecond, now)
  }

  /** A Builds message of `n` entries (added and removed). */
  builds (n: number): BudgetName | null {
    return this.buildEntries.take(n) ? null : 'build-entries'
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
    return this.pieceMapDeltas.take(n) ? null : 'piece-map-deltas'
  }
}
