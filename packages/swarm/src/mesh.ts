/**
 * Making a mesh without a DHT: LAN discovery (lan.ts) and peer exchange.
 * Members tell each other where the members they are connected to listen
 * (their data ports), so one known member is enough to reach all; the
 * receiver validates every address and connects directly, and the
 * connection proves membership like any other.
 */
import { isIP } from 'node:net'
import { debugLogger, MAX_PEER_ADDRESSES, type Logger, type PeerAddress } from '@distswarm/protocol'
import { isLoopbackHost, LanDiscovery } from './lan.js'
import { TokenBucket } from './rate.js'
import type { Peer } from './peer.js'
import type { HostPort } from './types.js'

/** Peer-exchange messages taken from one peer: a burst of this many, refilled at PEX_PER_S; the rest are ignored. */
const PEX_BURST = 4
const PEX_PER_S = 0.5
/** After a member joins or leaves, wait this long for more before telling the others (one message for a burst of joins). */
const PEX_DEBOUNCE_MS = 300
/** Addresses remembered (when each was last dialled); the oldest is forgotten first. */
const MAX_KNOWN = 256
/** One address is not dialled again sooner than this. */
const REDIAL_MS = 10_000
/** Dials in flight at once; more wait for the next exchange or beacon. */
const MAX_DIALS = 8
/** A member lost to silence is dialled this often, for REDIAL_FOR_MS: a cut link that comes back is used within a second. */
const REDIAL_EVERY_MS = 1000
const REDIAL_FOR_MS = 2 * 60_000

export interface MeshInit {
  /** Our public key. */
  publicKey: Buffer
  networkKey: Uint8Array
  /** The address our sockets are bound to. */
  host: string
  /** Our data port (0: none; then nobody can dial us, and we announce nothing). */
  dataPort: () => number
  /** Ready member connections. */
  members: () => Iterable<Peer>
  /** One connection attempt to an agent's data port; resolves when it ends. */
  dial: (to: HostPort) => Promise<void>
  /** LAN discovery: false for none; else its UDP port and group (defaults in lan.ts). */
  lan: false | { port?: number, group?: string, intervalMs?: number }
  logger?: Logger
}

/** The address as dialled: IPv4-mapped IPv6 as plain IPv4. */
export function plainHost (host: string): string {
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host
}

/**
 * Why an address from a peer is not dialled, or null when it may be: only
 * an IP literal of a unicast host, and loopback only when we or the sender
 * are on loopback (a LAN peer never has a reason to send one).
 */
export function addressProblem (host: string, port: number, loopbackOk: boolean): string | null {
  const h = plainHost(host)
  const v = isIP(h)
  if (v === 0) return 'not an IP address'
  if (port < 1 || port > 65535) return 'port out of range'
  if (h === '0.0.0.0' || h === '::') return 'unspecified'
  if (v === 4) {
    const first = Number(h.split('.')[0])
    if (first >= 224) return 'multicast or reserved'
    if (h === '255.255.255.255') return 'broadcast'
    if (first === 0) return 'unspecified'
  } else if (/^ff/i.test(h)) {
    return 'multicast'
  }
  if (isLoopbackHost(h) && !loopbackOk) return 'loopback from a peer not on loopback'
  return null
}

export class Mesh {
  private readonly init: MeshInit
  private readonly logger: Logger
  private lan: LanDiscovery | null = null
  private readonly known = new Map<string, number>()
  private dials = 0
  /** Addresses with a dial in flight. */
  private readonly dialling = new Set<string>()
  /** Members lost to silence, redialled until back (see redial). */
  private readonly lost = new Map<string, { to: HostPort, until: number }>()
  private lostTimer: NodeJS.Timeout | null = null
  private debounce: NodeJS.Timeout | null = null
  /** What each member has been told, by its key: keys of members sent. */
  private readonly told = new WeakMap<Peer, Set<string>>()
  private readonly buckets = new WeakMap<Peer, TokenBucket>()
  private stopped = false

  constructor (init: MeshInit) {
    this.init = init
    this.logger = init.logger ?? debugLogger('distswarm:mesh')
  }

  /** Starts LAN discovery when asked for and there is a data port; a failure to bind is a warning, not a failed start. */
  async start (): Promise<void> {
    const dataPort = this.init.dataPort()
    if (this.init.lan === false || dataPort === 0 || this.stopped) return
    const lan = new LanDiscovery({
      ...this.init.lan,
      networkKey: this.init.networkKey,
      host: this.init.host,
      dataPort,
      isConnected: (to) => this.isConnected(to),
      dial: (to) => this.dial(to, 'lan'),
      logger: this.logger
    })
    try {
      await lan.start()
      this.lan = lan
      this.logger.debug('lan.started', { host: this.init.host, port: this.init.lan.port })
    } catch (err) {
      this.logger.warn('lan.unavailable', { error: (err as Error).message, fix: 'LAN discovery is off; peers need --bootstrap or --peer' })
    }
  }

  stop (): void {
    this.stopped = true
    if (this.debounce) clearTimeout(this.debounce)
    if (this.lostTimer) clearInterval(this.lostTimer)
    this.lostTimer = null
    this.lost.clear()
    this.lan?.stop()
  }

  /** A member connection is ready, or one closed: tell the members what they have not heard yet, soon. */
  changed (): void {
    if (this.stopped || this.debounce) return
    this.debounce = setTimeout(() => {
      this.debounce = null
      this.tellAll()
    }, PEX_DEBOUNCE_MS)
    this.debounce.unref()
  }

  /**
   * A member declared dead (silent): dial it again at once, not after
   * REDIAL_MS. When it was a cut link that is back, the new connection works
   * while the old one waits out its TCP back-off; when the box is gone, the
   * dial fails within the connect timeout.
   */
  redial (p: Peer): void {
    const a = this.addressOf(p)
    if (!a || this.stopped) return
    const to = { host: a.host, port: a.port }
    this.lost.set(p.publicKeyHex, { to, until: Date.now() + REDIAL_FOR_MS })
    this.lostTimer ??= setInterval(() => this.retryLost(), REDIAL_EVERY_MS)
    this.lostTimer.unref()
    this.retryLost()
  }

  /** Dials each member lost to silence again, until it is back or REDIAL_FOR_MS passed (one dial per address in flight). */
  private retryLost (): void {
    const now = Date.now()
    const connected = new Set([...this.init.members()].map((m) => m.publicKeyHex))
    for (const [hex, l] of this.lost) {
      if (connected.has(hex) || now > l.until || this.stopped) {
        this.lost.delete(hex)
        continue
      }
      this.known.delete(`${l.to.host}:${l.to.port}`)
      this.dial(l.to, 'redial')
    }
    if (this.lost.size === 0 && this.lostTimer) {
      clearInterval(this.lostTimer)
      this.lostTimer = null
    }
  }

  private addressOf (p: Peer): PeerAddress | null {
    const host = p.remoteHost
    if (!host || p.remoteDataPort === 0) return null
    const plain = plainHost(host)
    return isIP(plain) === 0 ? null : { publicKey: p.publicKey, host: plain, port: p.remoteDataPort }
  }

  private tellAll (): void {
    const members = [...this.init.members()].filter((p) => p.state === 'ready')
    const addresses = members.map((p) => ({ peer: p, address: this.addressOf(p) }))
    for (const to of members) {
      let told = this.told.get(to)
      if (!told) this.told.set(to, told = new Set())
      const fresh = addresses
        .filter(({ peer, address }) => peer !== to && address !== null && !told!.has(peer.publicKeyHex))
        .slice(0, MAX_PEER_ADDRESSES)
      if (fresh.length === 0) continue
      for (const { peer } of fresh) told.add(peer.publicKeyHex)
      to.sendPeerAddresses(fresh.map(({ address }) => address!))
    }
  }

  /** Addresses a member told us: checked, rate-limited, and dialled when new. */
  onAddresses (from: Peer, addresses: readonly PeerAddress[]): void {
    if (this.stopped) return
    let bucket = this.buckets.get(from)
    if (!bucket) this.buckets.set(from, bucket = new TokenBucket(PEX_BURST, PEX_PER_S))
    if (!bucket.take()) {
      this.logger.debug('pex.rate-limited', { peer: from.label })
      return
    }
    const loopbackOk = isLoopbackHost(this.init.host) || isLoopbackHost(plainHost(from.remoteHost ?? ''))
    const connected = new Set([...this.init.members()].map((p) => p.publicKeyHex))
    for (const a of addresses.slice(0, MAX_PEER_ADDRESSES)) {
      const key = a.publicKey.toString('hex')
      if (a.publicKey.equals(this.init.publicKey) || connected.has(key)) continue
      const problem = addressProblem(a.host, a.port, loopbackOk)
      if (problem) {
        this.logger.debug('pex.address-refused', { peer: from.label, address: `${a.host}:${a.port}`, why: problem })
        continue
      }
      // One side dials, as for fast-path links: two connections dialled at once would each replace the other.
      if (Buffer.compare(this.init.publicKey, a.publicKey) > 0) continue
      this.dial({ host: plainHost(a.host), port: a.port }, 'pex')
    }
  }

  /** True when a member connection comes from this data port. */
  private isConnected (to: HostPort): boolean {
    for (const p of this.init.members()) {
      if (p.remoteDataPort === to.port && plainHost(p.remoteHost ?? '') === to.host) return true
    }
    return false
  }

  private dial (to: HostPort, why: 'lan' | 'pex' | 'redial'): void {
    const key = `${to.host}:${to.port}`
    const now = Date.now()
    const last = this.known.get(key)
    if (this.stopped || this.dials >= MAX_DIALS || this.dialling.has(key) || (last !== undefined && now - last < REDIAL_MS) || this.isConnected(to)) return
    this.known.delete(key)
    this.known.set(key, now)
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value!)
    this.dials++
    this.dialling.add(key)
    this.logger.debug(`${why}.dial`, { address: key })
    this.init.dial(to)
      .catch((err: Error) => this.logger.debug(`${why}.dial-failed`, { address: key, error: err.message }))
      .finally(() => {
        this.dials--
        this.dialling.delete(key)
      })
  }

  /** LAN beacons heard from members of our network so far. */
  get lanHeard (): number {
    return this.lan?.heard ?? 0
  }

  get lanRunning (): boolean {
    return this.lan !== null
  }
}
