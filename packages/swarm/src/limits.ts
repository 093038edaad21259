import { intOption } from './options.js'

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
  /** Entries one peer may advertise. Default 1 000 000 (::gentoo has ~70 000 distfiles). */
  maxRemoteEntries?: number
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
  maxRemoteEntries: 1_000_000,
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
