import { EventEmitter } from 'node:events'
import createDebug from 'debug'
import HyperDHT from 'hyperdht'
import Hyperswarm, { type PeerDiscovery } from 'hyperswarm'
import { toHex, type FileEntry } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import { DataPath } from './datapath.js'
import { EntryPool } from './entries.js'
import { resolvePort } from './dht.js'
import { NETWORK_KEY_BYTES, topicOf } from './membership.js'
import { Peer, type PeerLimits } from './peer.js'
import { Transfer, type PieceSource } from './transfer.js'
import type { HostPort, KeyPair, LocalSource, SecretStream, Sink } from './types.js'

const log = createDebug('distswarm:swarm')

export interface SwarmInit {
  /** The 32-byte secret shared by the boxes of one network. */
  networkKey: Uint8Array
  /** This agent's identity; keep it stable across restarts. */
  keyPair: KeyPair
  /** DHT bootstrap nodes. Required: an empty list means a DHT of our own, never the public one. */
  bootstrap: HostPort[]
  /** Address the DHT socket binds to. Default '0.0.0.0'. */
  host?: string
  /** UDP port of the DHT socket. Default 0: any free port. */
  port?: number
  /** Display name sent to peers. Default ''. */
  name?: string
  /** What we advertise and serve. */
  source: LocalSource
  /**
   * Whether this box may be unreachable to the others (behind NAT). Default
   * false: the agents of one LAN reach each other directly. Left true,
   * hyperdht assumes a firewall until its NAT probing says otherwise, and
   * for the first ~10 s a server waits for a holepunch that a direct client
   * never sends: both sides then hold a connection the other never sees.
   */
  firewalled?: boolean
  /** TCP port of the fast data path (0: any free port), or null for none: then transfers use the hyperswarm stream. Default 0. */
  dataPort?: number | null
  /** Agents to connect to directly, at their data ports: for a LAN without a DHT. Default none. */
  staticPeers?: HostPort[]
  /** This agent only serves (a main build host): peers are told so in hello and ask it first. Default false. */
  seeder?: boolean
  /**
   * First wait before looking for peers again; each wait doubles, up to
   * MAX_REDISCOVER_MS (5 min). Default 2000. An agent given 300000 behaves
   * from the start like one that has been up for a quarter of an hour.
   */
  rediscoverMs?: number
  /**
   * Peers refused: not connected to, their connections dropped on arrival,
   * never asked for a file. The caller keeps the book (the agent's Fetcher
   * bans a peer after repeated verification faults). Default: nobody.
   */
  isBanned?: (publicKeyHex: string) => boolean
  /** Connections at most. Default 64. */
  maxPeers?: number
  /** Bytes asked for in one request. Default 4 MiB. */
  rangeSize?: number
  /** Requests in flight per source of a download: keeps each pipe full. Default 2. */
  window?: number
  /** Pieces of a download held in memory ahead of the write position: bounds its memory to about rangeSize × maxAhead. Default 8. */
  maxAhead?: number
  /** A piece in flight at least this long (and twice what its source's rate predicts) is also asked of another source. Default 2000 ms. */
  hedgeAfterMs?: number
  limits?: PeerLimits
}

export interface SwarmEvents {
  'peer-ready': [Peer]
  'peer-closed': [Peer]
  inventory: [Peer]
  /** A peer says bytes we served it for this digest failed verification. */
  report: [Peer, Buffer]
}

/** A file some connected peer advertises, and who has it. */
export interface RemoteFile {
  entry: FileEntry
  holders: Peer[]
}

const DEFAULT_RANGE_SIZE = 4 * 1024 * 1024

/** Pieces of `pieceSize` bytes from `offset` up to `offset + length`. */
export interface PieceRange {
  offset: number
  length: number
  pieceSize: number
}

// Look for peers again after 2 s, 4 s, … then every this often: agents that
// start at the same moment can miss each other's announcements, and meeting
// one of them says nothing about the others.
const MAX_REDISCOVER_MS = 5 * 60_000

// How often an agent checks that the DHT still lists it under the topic.
const ANNOUNCEMENT_CHECK_MS = 10_000

export class DistSwarm extends EventEmitter<SwarmEvents> {
  readonly topic: Buffer
  readonly publicKey: Buffer
  private readonly init: SwarmInit
  private readonly peers = new Map<string, Peer>()
  private readonly connections = new Set<Peer>()
  private dht: HyperDHT | null = null
  private dataPath: DataPath | null = null
  private hyperswarm: Hyperswarm | null = null
  private discovery: PeerDiscovery | null = null
  private rediscoverTimer: NodeJS.Timeout | null = null
  private rediscoverMs: number
  private announcementTimer: NodeJS.Timeout | null = null
  private destroyed = false
  /** Wakers of static-peer redial waits, so destroy() ends them at once. */
  private readonly redialTimers = new Set<() => void>()
  /** Whether a peer is refused; a ban outlives the connection (hyperswarm's firewall refuses the key). */
  private readonly isBanned: (publicKeyHex: string) => boolean
  /** Remote file entries, one copy for all peers that advertise one. */
  private readonly entryPool = new EntryPool()
  /** Bytes of closed connections, by peer key, for traffic(). */
  private readonly pastTraffic = new Map<string, { sent: number, received: number }>()
  /** File bytes uploaded over connections that have closed, for servedBytes(). */
  private pastServed = 0

  constructor (init: SwarmInit) {
    super()
    if (init.networkKey.byteLength !== NETWORK_KEY_BYTES) throw SwarmError.INVALID_NETWORK_KEY(`must be ${NETWORK_KEY_BYTES} bytes`)
    this.init = init
    this.isBanned = init.isBanned ?? (() => false)
    this.rediscoverMs = init.rediscoverMs ?? 2000
    this.topic = topicOf(init.networkKey)
    this.publicKey = init.keyPair.publicKey
  }

  /** Joins the network; resolves once our announcement is on the DHT. */
  async listen (): Promise<void> {
    const { bootstrap, host = '0.0.0.0', port = 0, keyPair, maxPeers = 64, firewalled = false, dataPort = 0 } = this.init
    const staticPeers = this.init.staticPeers ?? []
    if (dataPort !== null || staticPeers.length > 0) {
      this.dataPath = new DataPath({
        keyPair,
        isMember: (key) => this.peers.has(key),
        onStream: (stream, opts) => this.onConnection(stream, { transport: 'tcp', dataOnly: opts.dataOnly })
      })
      if (dataPort !== null) await this.dataPath.listen(host, dataPort)
    }
    for (const to of staticPeers) void this.keepDialing(to)
    if (bootstrap.length === 0) {
      // Without a DHT, others can still dial our data port; with neither, nobody ever meets us.
      if (staticPeers.length === 0 && dataPort === null) throw SwarmError.NO_WAY_IN()
      log('no bootstrap node: static peers only, no DHT')
      return
    }
    this.dht = new HyperDHT({ bootstrap, host, port: await resolvePort(host, port), keyPair, firewalled })
    this.hyperswarm = new Hyperswarm({ dht: this.dht, keyPair, maxPeers, firewall: (key) => this.isBanned(toHex(key)) })
    this.hyperswarm.on('connection', (stream: SecretStream) => this.onConnection(stream))
    this.discovery = this.hyperswarm.join(this.topic, { server: true, client: true })
    await this.discovery.flushed()
    this.scheduleRediscover()
    this.watchAnnouncement()
    log('joined topic %s as %s', toHex(this.topic).slice(0, 16), toHex(this.publicKey).slice(0, 16))
  }

  /** The DHT socket's address. */
  address (): HostPort | null {
    return this.dht ? this.dht.address() : null
  }

  /** How transfers with this peer travel: over TCP (a fast-path link, or a static peer's connection), else hyperswarm. */
  pathTo (publicKeyHex: string): 'tcp' | 'hyperswarm' {
    return this.dataPath?.link(publicKeyHex) ? 'tcp' : this.peers.get(publicKeyHex)?.transport ?? 'hyperswarm'
  }

  /** Dials a static peer, and again whenever the connection ends, 1 s, 2 s, … 60 s apart. */
  private async keepDialing (to: HostPort): Promise<void> {
    let delay = 1000
    while (!this.destroyed && this.dataPath) {
      const started = Date.now()
      try {
        await this.dataPath.dial(to)
      } catch (err) {
        log('static peer %s:%d: %s', to.host, to.port, (err as Error).message)
      }
      // A connection that lasted a while was good: retry soon.
      delay = Date.now() - started > 60_000 ? 1000 : Math.min(delay * 2, 60_000)
      await new Promise<void>((resolve) => {
        this.redialTimers.add(resolve)
        setTimeout(() => { this.redialTimers.delete(resolve); resolve() }, delay).unref()
      })
    }
  }

  /** The fast path's TCP port, or null when it is off. */
  get dataPort (): number | null {
    return this.dataPath?.port ?? null
  }

  /** Authenticated peers. */
  readyPeers (): Peer[] {
    return [...this.peers.values()]
  }

  /** Every file with this hex digest or this name that connected peers advertise. */
  find (query: { blake2b?: string, name?: string }): RemoteFile[] {
    const found = new Map<string, RemoteFile>()
    for (const peer of this.peers.values()) {
      const hits = query.blake2b !== undefined
        ? [peer.files.get(query.blake2b)].filter((e) => e !== undefined)
        : peer.filesNamed(query.name ?? '')
      for (const entry of hits) {
        const hex = toHex(entry.blake2b)
        const known = found.get(hex)
        if (known) known.holders.push(peer)
        else found.set(hex, { entry, holders: [peer] })
      }
    }
    return [...found.values()]
  }

  /** Bytes exchanged with a peer over every connection to it (member connection and fast-path links), since we started. */
  traffic (publicKeyHex: string): { sent: number, received: number } {
    const t = { ...this.pastTraffic.get(publicKeyHex) ?? { sent: 0, received: 0 } }
    for (const p of [this.peers.get(publicKeyHex), this.dataPath?.link(publicKeyHex)]) {
      if (p && !p.closed) { t.sent += p.bytesSent; t.received += p.bytesReceived }
    }
    return t
  }

  /** File bytes uploaded to peers since we started, over every connection. */
  servedBytes (): number {
    let n = this.pastServed
    for (const p of this.connections) n += p.bytesServed
    return n
  }

  /** When bytes from this peer last arrived, over its member connection or its fast-path link (ms since the epoch); null when not connected. */
  lastSeen (publicKeyHex: string): number | null {
    const times = [this.peers.get(publicKeyHex), this.dataPath?.link(publicKeyHex)].filter((p) => p !== undefined).map((p) => p.lastReceivedAt)
    return times.length ? Math.max(...times) : null
  }

  /** Ready peers that advertise this hex digest, banned ones left out: whom a download or a diagnosis may ask. */
  private holdersOf (hex: string): Peer[] {
    return this.readyPeers().filter((p) => p.files.has(hex) && !this.isBanned(p.publicKeyHex))
  }

  /** Closes the member connection of a peer (a ban: `isBanned` keeps it out afterwards). */
  disconnect (publicKeyHex: string, reason: Error): void {
    this.peers.get(publicKeyHex)?.destroy(reason)
  }

  /** Tells a peer that its bytes for this digest failed verification, so it can check its copy. */
  report (publicKeyHex: string, blake2b: Buffer): void {
    this.peers.get(publicKeyHex)?.sendReport(blake2b)
  }

  /** Tells every peer what the local inventory gained and lost. */
  announce (added: FileEntry[], removed: Buffer[] = []): void {
    for (const peer of this.peers.values()) peer.sendInventoryDelta(added, removed)
  }

  /**
   * Downloads the rest of a file (after `sink.written`) into `sink`, from
   * every peer that holds it but those in `exclude` (see Transfer: pieces
   * spread over the sources, held-up pieces hedged, failed sources' pieces
   * taken over by the others); with `ranges`, only those, written over what
   * the sink holds there (a repair). Resolves to where each written byte
   * range came from, so a caller whose verification fails knows whom to suspect.
   */
  async download (entry: FileEntry, sink: Sink, opts: { exclude?: ReadonlySet<string>, ranges?: ReadonlyArray<{ offset: number, length: number }> } = {}): Promise<PieceSource[]> {
    if (this.destroyed) throw SwarmError.DESTROYED()
    const { rangeSize = DEFAULT_RANGE_SIZE, window = 2, maxAhead = 8, hedgeAfterMs = 2000 } = this.init
    const hex = toHex(entry.blake2b)
    const exclude = opts.exclude ?? new Set<string>()
    const transfer = new Transfer(entry, sink, {
      holders: () => this.holdersOf(hex).filter((p) => !exclude.has(p.publicKeyHex)),
      via: (peer) => this.dataPath?.link(peer.publicKeyHex) ?? peer
    }, { rangeSize, window, maxAhead, hedgeAfterMs }, opts.ranges)
    return await transfer.run()
  }

  /** Bytes asked for in one request: downloads cut their pieces at this size from their first offset. */
  get rangeSize (): number {
    return this.init.rangeSize ?? DEFAULT_RANGE_SIZE
  }

  /**
   * Each holder's piece hashes of its own copy of `entry` over `range`, by
   * peer key (for a diagnosis: see the agent's Fetcher and judge()). Holders
   * that fail to answer are left out.
   */
  async pieceHashes (entry: FileEntry, range: PieceRange): Promise<Map<string, Buffer[]>> {
    const claims = new Map<string, Buffer[]>()
    await Promise.all(this.holdersOf(toHex(entry.blake2b)).map(async (p) => {
      try {
        claims.set(p.publicKeyHex, await p.requestHashes(entry.blake2b, range.offset, range.length, range.pieceSize))
      } catch (err) {
        log('%s: no piece hashes from %s: %s', entry.name, p.label, (err as Error).message)
      }
    }))
    return claims
  }

  private onConnection (stream: SecretStream, via: { transport: 'hyperswarm' | 'tcp', dataOnly: boolean } = { transport: 'hyperswarm', dataOnly: false }): void {
    if (this.destroyed || this.isBanned(toHex(stream.remotePublicKey))) {
      stream.destroy()
      return
    }
    const peer = new Peer({
      transport: via.transport,
      dataOnly: via.dataOnly,
      seeder: this.init.seeder ?? false,
      entries: this.entryPool,
      stream,
      networkKey: this.init.networkKey,
      localName: this.init.name ?? '',
      source: this.init.source,
      limits: this.init.limits,
      dataPort: this.dataPath?.port ?? 0,
      onReady: (p) => {
        if (p.isLink) {
          // Only a member we already know gets a link, and only over TCP.
          if (p.transport === 'tcp' && this.peers.has(p.publicKeyHex)) this.dataPath?.adopt(p)
          else p.destroy(SwarmError.PROTOCOL_VIOLATION('a data link from no connected member'))
          return
        }
        this.peers.get(p.publicKeyHex)?.destroy()
        this.peers.set(p.publicKeyHex, p)
        // One side dials a fast-path link: the one with the smaller key; a TCP member connection is fast already.
        if (p.transport === 'hyperswarm' && Buffer.compare(this.publicKey, p.publicKey) < 0) this.dataPath?.connect(p)
        this.emit('peer-ready', p)
      },
      onInventory: (p) => this.emit('inventory', p),
      onReport: (p, blake2b) => this.emit('report', p, blake2b),
      onClose: (p, reason) => {
        this.connections.delete(p)
        this.pastServed += p.bytesServed
        const past = this.pastTraffic.get(p.publicKeyHex) ?? { sent: 0, received: 0 }
        this.pastTraffic.set(p.publicKeyHex, { sent: past.sent + p.bytesSent, received: past.received + p.bytesReceived })
        this.dataPath?.release(p)
        if (this.peers.get(p.publicKeyHex) === p) {
          this.peers.delete(p.publicKeyHex)
          this.dataPath?.drop(p.publicKeyHex)
          log('peer %s left%s', p.label, reason ? `: ${reason.message}` : '')
          this.emit('peer-closed', p)
        }
      }
    })
    this.connections.add(peer)
  }

  private scheduleRediscover (): void {
    if (this.destroyed) return
    this.rediscoverTimer = setTimeout(() => {
      // Both flags: a session's refresh sets its mode, and server: false would unannounce us.
      this.discovery?.refresh({ client: true, server: true }).catch((err: Error) => log('rediscovery failed: %s', err.message))
      this.rediscoverMs = Math.min(this.rediscoverMs * 2, MAX_REDISCOVER_MS)
      this.scheduleRediscover()
    }, this.rediscoverMs)
    this.rediscoverTimer.unref()
  }

  /**
   * Every ANNOUNCEMENT_CHECK_MS, looks ourselves up under the topic; when the
   * DHT no longer lists us, announces and looks for peers at once. A
   * bootstrap node that was restarted brings up an empty DHT (the nodes that
   * held the announcements are gone), and the next scheduled rediscovery may
   * be MAX_REDISCOVER_MS away: until then an agent that joins finds nobody.
   */
  private watchAnnouncement (): void {
    if (this.destroyed) return
    this.announcementTimer = setTimeout(() => {
      void this.reannounceIfForgotten().finally(() => this.watchAnnouncement())
    }, ANNOUNCEMENT_CHECK_MS)
    this.announcementTimer.unref()
  }

  private async reannounceIfForgotten (): Promise<void> {
    const dht = this.dht
    if (this.destroyed || !dht) return
    try {
      for await (const reply of dht.lookup(this.topic)) {
        if (reply.peers.some((p) => p.publicKey.equals(this.publicKey))) return
      }
    } catch (err) {
      log('announcement check failed: %s', (err as Error).message)
    }
    if (this.destroyed) return
    log('the DHT no longer lists us under the topic: announcing again')
    await this.discovery?.refresh({ client: true, server: true }).catch((err: Error) => log('re-announcing failed: %s', err.message))
  }

  /** Leaves the network and closes every connection. Idempotent. */
  async destroy (): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    if (this.rediscoverTimer) clearTimeout(this.rediscoverTimer)
    if (this.announcementTimer) clearTimeout(this.announcementTimer)
    for (const wake of this.redialTimers) wake()
    for (const peer of this.connections) peer.destroy(SwarmError.DESTROYED())
    await this.dataPath?.close()
    await this.hyperswarm?.destroy()
    await this.dht?.destroy()
  }
}
