// Over 400 lines: the one place where discovery, the data path, the peers and transfers meet; each of those lives in its own module.
import { EventEmitter } from 'node:events'
import { debugLogger, toHex, type FileEntry, type Logger, type PieceRange } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import { BuildBook, type BuildAd } from './builds.js'
import { CoolOff, isOffence } from './cooloff.js'
import { DataPath } from './datapath.js'
import { EntryPool } from './entries.js'
import { Discovery } from './discovery.js'
import { NETWORK_KEY_BYTES, topicOf } from './membership.js'
import { intOption, portOption } from './options.js'
import { peerLimits, type PeerLimits } from './limits.js'
import { Peer } from './peer.js'
import { Problems, type Problem } from './problems.js'
import { Transfer, transferOptions, type PieceSource, type RelayMode, type TransferOptions } from './transfer.js'
import { agreedHashes } from './pieces.js'
import { DEFAULT_MAX_RELAY_UPLOADS, Relay } from './relay.js'
import { Mesh } from './mesh.js'
import type { HostPort, KeyPair, LocalSource, SecretStream, Sink } from './types.js'

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
  /** Where events go; parts get children (peer, datapath, transfer). Default: debug output under distswarm:swarm. */
  logger?: Logger
  /**
   * LAN discovery (lan.ts): beacons on a link-local multicast group, on
   * loopback only when `host` is a loopback address. Needs a data port.
   * true: the default UDP port and group; an object to choose them.
   * Default false. Peer exchange (mesh.ts) is always on.
   */
  lanDiscovery?: boolean | { port?: number, group?: string, intervalMs?: number }
  /**
   * Swarming (relay.ts): downloads into a sink that allows gaps fetch pieces
   * in any order from whole-file and partial holders, and serve their
   * verified pieces to others while they go on. Default true.
   */
  relay?: boolean
  /** Relay uploads served at once, over all peers (more: BUSY). Default 4. */
  maxRelayUploads?: number
}

/** How DistSwarm.download goes about it. */
export interface DownloadOptions {
  /** Hex keys of peers not to ask. */
  exclude?: ReadonlySet<string>
  /** Only these ranges, written over what the sink holds there (a repair). */
  ranges?: ReadonlyArray<{ offset: number, length: number }>
  /** Swarming: a partial holder sent a piece that failed its hash (it is left out of this download; the caller blames it). */
  onFault?: (publicKeyHex: string, why: string) => void
}

export interface SwarmEvents {
  'peer-ready': [Peer]
  'peer-closed': [Peer]
  inventory: [Peer]
  /** A peer says bytes we served it for this digest failed verification. */
  report: [Peer, Buffer]
  /** The remote builds (builds()) changed; once per turn of the event loop at most. */
  builds: []
}

/** A binary package connected peers advertise (verified), and who has it. */
export interface RemoteBuild {
  ad: BuildAd
  holders: Peer[]
}

/** A file some connected peer advertises, and who has it. */
export interface RemoteFile {
  entry: FileEntry
  holders: Peer[]
}

export type { PieceRange }

export const DEFAULT_HOST = '0.0.0.0'
export const DEFAULT_MAX_PEERS = 64
/** A peer's offences are forgotten after this long without one (see limits.coolOffMs). */
const COOL_OFF_FORGET_MS = 24 * 60 * 60_000
export const DEFAULT_REDISCOVER_MS = 2000
/** Holders of the whole file asked for its piece hashes before a swarming download relays anything. */
const HASH_HOLDERS = 3


const WRONG_NETWORK_KEY = 'it does not know our network key: the two boxes were given different network keys'
const OTHER_VERSION = 'it speaks another protocol version: update the older agent'
/**
 * Clocks further apart than this are a problem: LAN discovery's tags rotate
 * every EPOCH_MS (10 min) and tolerate one epoch, so boxes 10 min apart stop
 * hearing each other; a minute apart already means a box keeps no time.
 */
export const CLOCK_SKEW_MS = 60_000
/** Two connections to one member that both became ready within this are taken for a simultaneous dial (see replacesConnection). */
export const SIMULTANEOUS_MS = 10_000

/** What replacesConnection needs of a connection. */
export interface ConnectionAge { state: string, readyAt: number, initiator: boolean }

/**
 * Whether a new connection to a member replaces the one we hold. A newer
 * one does (the old may be stuck: a box back from a cut link dials us
 * while our old connection waits out its TCP back-off), except when both
 * are new and were dialled from opposite sides: two boxes that dialled each
 * other at once (LAN discovery, redials, peer exchange) must keep the same
 * one, or each could keep the one the other dropped. Then the one dialled by
 * the smaller key stays, on both sides.
 */
export function replacesConnection (fresh: ConnectionAge, old: ConnectionAge, weAreSmaller: boolean, now: number): boolean {
  if (old.state !== 'ready' || now - old.readyAt >= SIMULTANEOUS_MS || fresh.initiator === old.initiator) return true
  return fresh.initiator === weAreSmaller
}

export class DistSwarm extends EventEmitter<SwarmEvents> {
  readonly topic: Buffer
  readonly publicKey: Buffer
  private readonly init: SwarmInit
  private readonly log: Logger
  private readonly problemList: Problems
  private readonly transferOpts: TransferOptions
  private readonly limits: Required<PeerLimits>
  private readonly host: string
  private readonly port: number
  private readonly dataPortOption: number | null
  private readonly staticPeers: readonly HostPort[]
  private readonly name: string
  private readonly seeder: boolean
  private readonly firewalled: boolean
  private readonly maxPeers: number
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new'
  private starting: Promise<void> | null = null
  private stopping: Promise<void> | null = null
  private readonly peers = new Map<string, Peer>()
  private readonly connections = new Set<Peer>()
  private dataPath: DataPath | null = null
  private discovery: Discovery | null = null
  private readonly rediscoverMs: number
  private destroyed = false
  /** LAN discovery and peer exchange; null without a data path. */
  private mesh: Mesh | null = null
  /** Wakers of static-peer redial waits, so destroy() ends them at once. */
  private readonly redialTimers = new Set<() => void>()
  /** Whether a peer is refused; a ban outlives the connection (hyperswarm's firewall refuses the key). */
  private readonly isBanned: (publicKeyHex: string) => boolean
  /** Remote file entries, one copy for all peers that advertise one. */
  private readonly entryPool: EntryPool
  /** Bytes of closed connections, by peer key, for traffic(). */
  private readonly pastTraffic = new Map<string, { sent: number, received: number, relayed: number }>()
  /** File bytes uploaded over connections that have closed, for servedBytes(). */
  private pastServed = 0
  /** Of those, relayed from partial downloads, for relayedBytes(). */
  private pastRelayed = 0
  /** Binary packages: the set we advertise, and the verified ones peers advertise. */
  private readonly buildBook: BuildBook<Peer>
  /** Swarming: our partial downloads' pieces, and the members'. */
  private readonly relay: Relay
  private readonly source: LocalSource
  /** Peers cut off for an offence, refused for a while (limits.coolOffMs). */
  private readonly coolOff: CoolOff

  /** Checks every option (ERR_INVALID_OPTION, ERR_INVALID_NETWORK_KEY, ERR_NO_WAY_IN); starts nothing. */
  constructor (init: SwarmInit) {
    super()
    if (init.networkKey?.byteLength !== NETWORK_KEY_BYTES) throw SwarmError.INVALID_NETWORK_KEY(`must be ${NETWORK_KEY_BYTES} bytes`)
    if (init.keyPair?.publicKey?.byteLength !== 32 || init.keyPair.secretKey?.byteLength !== 64) throw SwarmError.INVALID_OPTION('keyPair', 'expected an Ed25519 key pair (createKeyPair())')
    if (!Array.isArray(init.bootstrap)) throw SwarmError.INVALID_OPTION('bootstrap', 'expected a list of host:port (empty: no DHT)')
    for (const [name, list] of [['bootstrap', init.bootstrap], ['staticPeers', init.staticPeers ?? []]] as const) {
      for (const hp of list) {
        if (typeof hp?.host !== 'string' || hp.host === '') throw SwarmError.INVALID_OPTION(name, 'an entry without a host')
        intOption(name, hp.port, 1, 65535)
      }
    }
    if (init.port !== undefined) portOption('port', init.port)
    if (init.dataPort !== undefined && init.dataPort !== null) portOption('dataPort', init.dataPort)
    // Without a DHT, others can still dial our data port; with neither, nobody ever meets us.
    if (init.bootstrap.length === 0 && (init.staticPeers ?? []).length === 0 && init.dataPort === null) throw SwarmError.NO_WAY_IN()
    this.init = init
    this.host = init.host ?? DEFAULT_HOST
    this.port = init.port ?? 0
    this.dataPortOption = init.dataPort === undefined ? 0 : init.dataPort
    this.staticPeers = [...init.staticPeers ?? []]
    this.name = init.name ?? ''
    this.seeder = init.seeder ?? false
    this.firewalled = init.firewalled ?? false
    this.maxPeers = intOption('maxPeers', init.maxPeers ?? DEFAULT_MAX_PEERS, 1)
    this.rediscoverMs = intOption('rediscoverMs', init.rediscoverMs ?? DEFAULT_REDISCOVER_MS, 1)
    this.transferOpts = transferOptions(init)
    this.isBanned = init.isBanned ?? (() => false)
    this.limits = peerLimits(init.limits)
    this.coolOff = new CoolOff({ baseMs: this.limits.coolOffMs, maxMs: this.limits.maxCoolOffMs, forgetMs: COOL_OFF_FORGET_MS })
    this.entryPool = new EntryPool({ maxBytes: this.limits.maxPoolBytes })
    this.log = init.logger ?? debugLogger('distswarm:swarm')
    this.problemList = new Problems(this.log)
    this.topic = topicOf(init.networkKey)
    this.publicKey = init.keyPair.publicKey
    this.relay = new Relay({
      members: () => this.peers.values(),
      // We may hold it ourselves (a seeder keeps the maps of those it serves, see Relay.claim).
      heldWhole: (hex, size, from) => init.source.get(Buffer.from(hex, 'hex'))?.size === size || this.readyPeers().some((p) => p !== from && p.files.get(hex)?.size === size),
      logger: this.log.child('relay'),
      maxUploads: intOption('maxRelayUploads', init.maxRelayUploads ?? DEFAULT_MAX_RELAY_UPLOADS, 1)
    })
    this.source = this.relay.source(init.source)
    this.buildBook = new BuildBook<Peer>({
      logger: this.log.child('builds'),
      maxBuilds: this.limits.maxRemoteBuilds,
      maxBytes: this.limits.maxRemoteBuildBytes,
      maxPoolBytes: this.limits.maxBuildPoolBytes,
      changed: () => this.emit('builds')
    })
  }

  /**
   * Joins the network; resolves once our announcement is on the DHT.
   * Idempotent (a second call waits for the first); a start that fails
   * stops what it started, and the swarm stays stopped.
   */
  start (): Promise<void> {
    if (this.state === 'stopped') return Promise.reject(SwarmError.DESTROYED())
    this.starting ??= (async () => {
      this.state = 'starting'
      try {
        await this.join()
        if (this.destroyed) throw SwarmError.DESTROYED()
        this.state = 'started'
      } catch (err) {
        await this.stop()
        throw err
      }
    })()
    return this.starting
  }

  private async join (): Promise<void> {
    const { bootstrap, keyPair } = this.init
    const { staticPeers, dataPortOption: dataPort } = this
    if (dataPort !== null || staticPeers.length > 0) {
      this.dataPath = new DataPath({
        keyPair,
        logger: this.log.child('datapath'),
        problems: this.problemList,
        isMember: (key) => this.peers.has(key),
        onStream: (stream, opts) => this.onConnection(stream, { transport: 'tcp', dataOnly: opts.dataOnly, inbound: !opts.initiator })
      })
      if (dataPort !== null) await this.dataPath.listen(this.host, dataPort)
      if (this.destroyed) return
      const dataPath = this.dataPath
      const lan = this.init.lanDiscovery ?? false
      this.mesh = new Mesh({
        publicKey: this.publicKey,
        networkKey: this.init.networkKey,
        host: this.host,
        dataPort: () => dataPath.port,
        members: () => this.peers.values(),
        dial: (to) => new Promise((resolve, reject) => {
          // Counted as a dial until connected; the connection then lives on its own.
          dataPath.dial(to, resolve).catch(reject)
        }),
        lan: lan === true ? {} : lan,
        logger: this.log.child('mesh')
      })
      await this.mesh.start()
      if (this.destroyed) return
    }
    for (const to of staticPeers) void this.keepDialing(to)
    if (bootstrap.length === 0) {
      this.log.info('swarm.no-dht', { why: 'no bootstrap node: static peers only' })
      return
    }
    this.discovery = new Discovery({
      bootstrap,
      host: this.host,
      port: this.port,
      keyPair,
      firewalled: this.firewalled,
      maxPeers: this.maxPeers,
      topic: this.topic,
      rediscoverMs: this.rediscoverMs,
      firewall: (key) => this.refuses(toHex(key)),
      onConnection: (stream) => this.onConnection(stream),
      logger: this.log,
      problems: this.problemList
    })
    await this.discovery.start()
  }

  /**
   * Mistakes seen lately (a peer with another network key, a static peer or
   * bootstrap node that cannot be reached), the latest first: each was also
   * logged as a `warn`, once a minute at most per address.
   */
  problems (): Problem[] {
    return this.problemList.list()
  }

  /** The DHT socket's address. */
  address (): HostPort | null {
    return this.discovery?.address() ?? null
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
        // dial() reported what the user must see; here only the detail.
        this.log.debug('static-peer.dial-failed', { address: `${to.host}:${to.port}`, why: (err as Error).message })
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

  /** Bytes exchanged with a peer over every connection to it (member connection and fast-path links), since we started; `relayed`: file bytes we sent it from partial downloads. */
  traffic (publicKeyHex: string): { sent: number, received: number, relayed: number } {
    const t = { sent: 0, received: 0, relayed: 0, ...this.pastTraffic.get(publicKeyHex) }
    for (const p of this.connectionsTo(publicKeyHex)) {
      if (!p.closed) { t.sent += p.bytesSent; t.received += p.bytesReceived; t.relayed += p.bytesRelayed }
    }
    return t
  }

  /** Our member connection to a peer and our ready fast-path links to it. */
  private connectionsTo (publicKeyHex: string): Peer[] {
    const member = this.peers.get(publicKeyHex)
    return [...member ? [member] : [], ...this.dataPath?.linksTo(publicKeyHex) ?? []]
  }

  /** File bytes uploaded to peers since we started, over every connection. */
  servedBytes (): number {
    let n = this.pastServed
    for (const p of this.connections) n += p.bytesServed
    return n
  }

  /** Members holding verified pieces of the file with this hex digest while they download it (swarming): how many pieces each, by hex key, with their names. */
  partialHolders (hex: string): Array<{ peer: string, name: string, pieces: number }> {
    return this.relay.holders(hex, -1, -1).map((h) => ({ peer: h.peer.publicKeyHex, name: h.peer.name, pieces: h.count }))
  }

  /** Hex keys of the members that told us they download the file with this hex digest too (swarming), with or without pieces yet. */
  downloading (hex: string): string[] {
    return this.relay.downloading(hex).map((p) => p.publicKeyHex)
  }

  /** File bytes uploaded to peers from partial downloads (swarming), since we started. */
  relayedBytes (): number {
    let n = this.pastRelayed
    for (const p of this.connections) n += p.bytesRelayed
    return n
  }

  /** When bytes from this peer last arrived, over its member connection or its fast-path link (ms since the epoch); null when not connected. */
  lastSeen (publicKeyHex: string): number | null {
    const times = this.connectionsTo(publicKeyHex).map((p) => p.lastReceivedAt)
    return times.length ? Math.max(...times) : null
  }

  /** Ready peers that advertise this hex digest (as a distfile or a build), banned ones left out: whom a download or a diagnosis may ask. */
  private holdersOf (hex: string): Peer[] {
    return this.readyPeers().filter((p) => (p.files.has(hex) || this.buildBook.holds(p, hex)) && !this.isBanned(p.publicKeyHex))
  }

  /**
   * The full set of binary packages this box advertises now (its own builds
   * and those it keeps for others, each signed by its builder: see
   * signBuild). Peers get the difference from what they were told. An ad
   * past a bound or whose signature fails is left out, with a warning. An
   * ad object is read when first given (a new object for new content).
   */
  setBuilds (ads: readonly BuildAd[]): void {
    this.buildBook.set(ads)
  }

  /**
   * The verified builds ready, unbanned peers advertise: one row per file
   * (BLAKE2B) and builder, with the peers holding it. download() and
   * pieceHashes() take these holders too. The rows are frozen and shared
   * until the builds change: copy a list before changing it.
   */
  builds (): RemoteBuild[] {
    return this.buildBook.rows((p) => this.peers.get(p.publicKeyHex) === p && !this.isBanned(p.publicKeyHex))
  }

  /** Ready, unbanned peers that advertise a build with this hex BLAKE2B: cheaper than searching builds(). */
  buildHolders (blake2b: string): Peer[] {
    return this.readyPeers().filter((p) => this.buildBook.holds(p, blake2b) && !this.isBanned(p.publicKeyHex))
  }

  /** Builds this box advertises, and remote ones dropped: for a forged signature, or past a bound. */
  buildCounts (): { advertised: number, forged: number, refused: number } {
    return { advertised: this.buildBook.advertised, forged: this.buildBook.forged, refused: this.buildBook.refused }
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
  async download (entry: FileEntry, sink: Sink, opts: DownloadOptions = {}): Promise<PieceSource[]> {
    if (this.destroyed) throw SwarmError.DESTROYED()
    const hex = toHex(entry.blake2b)
    const exclude = opts.exclude ?? new Set<string>()
    const usable = (p: Peer): boolean => !exclude.has(p.publicKeyHex) && !this.isBanned(p.publicKeyHex)
    const pieceSize = this.transferOpts.rangeSize
    let mode: RelayMode | undefined
    let ours: ReturnType<Relay['begin']> | null = null
    if (this.init.relay !== false && sink.allowGaps === true && sink.tempPath !== undefined && sink.truncate && !opts.ranges && entry.size > pieceSize) {
      const local = ours = this.relay.begin(entry, pieceSize, sink.tempPath)
      let hashes: Array<Buffer | null> | null = null
      let asked = false
      const wanted = (): boolean => this.relay.downloading(hex).length > 0
      mode = {
        // Asked once another member downloads the file too, not waited for: bytes flow meanwhile (a holder hashes the whole file to answer, the first time).
        hashes: () => {
          if (!asked && wanted()) {
            asked = true
            void this.wholeFileHashes(entry, this.holdersOf(hex).filter(usable)).then((h) => { hashes = h })
          }
          return hashes
        },
        wanted,
        onHave: (i) => local.have(i),
        onFault: (key, why) => opts.onFault?.(key, why)
      }
    }
    const transfer = new Transfer(entry, sink, {
      holders: () => this.holdersOf(hex).filter(usable),
      // Their pieces are checked against the agreed hashes: not asked before those came.
      partialHolders: () => mode?.hashes() ? this.relay.holders(hex, entry.size, pieceSize).filter((h) => usable(h.peer) && this.peers.get(h.peer.publicKeyHex) === h.peer) : [],
      via: (peer) => this.dataPath?.link(peer.publicKeyHex) ?? peer,
      logger: this.log.child('transfer')
    }, this.transferOpts, opts.ranges, mode)
    try {
      return await transfer.run()
    } finally {
      if (ours?.served() === true) sink.distrust?.()
      ours?.end()
    }
  }

  /**
   * The piece hashes of the whole file that its holders agree on (see
   * agreedHashes: a majority of up to HASH_HOLDERS answers, seeders asked
   * first), or null when none answered: the download then relays nothing.
   */
  private async wholeFileHashes (entry: FileEntry, holders: Peer[]): Promise<Array<Buffer | null> | null> {
    const pieceSize = this.transferOpts.rangeSize
    const asked = [...holders].sort((a, b) => Number(b.remoteSeeder) - Number(a.remoteSeeder)).slice(0, HASH_HOLDERS)
    const answers = (await Promise.all(asked.map((p) => p.requestHashes(entry.blake2b, 0, entry.size, pieceSize).catch((err: unknown) => {
      this.log.debug('relay.no-piece-hashes', { name: entry.name, peer: p.label, why: (err as Error).message })
      return null
    })))).filter((a) => a !== null)
    if (answers.length === 0) return null
    return agreedHashes(answers, Math.ceil(entry.size / pieceSize))
  }

  /** Bytes asked for in one request: downloads cut their pieces at this size from their first offset. */
  get rangeSize (): number {
    return this.transferOpts.rangeSize
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
        this.log.debug('peer.no-piece-hashes', { name: entry.name, peer: p.label, why: (err as Error).message })
      }
    }))
    return claims
  }

  /** `inbound`: a TCP connection that came to our data port (its remote port is an ephemeral one). */
  private onConnection (stream: SecretStream, via: { transport: 'hyperswarm' | 'tcp', dataOnly: boolean, inbound: boolean } = { transport: 'hyperswarm', dataOnly: false, inbound: false }): void {
    if (this.destroyed || this.refuses(toHex(stream.remotePublicKey))) {
      stream.destroy()
      return
    }
    const peer = new Peer({
      transport: via.transport,
      dataOnly: via.dataOnly,
      seeder: this.seeder,
      entries: this.entryPool,
      stream,
      networkKey: this.init.networkKey,
      localName: this.name,
      source: this.source,
      limits: this.limits,
      logger: this.log.child('peer'),
      dataPort: this.dataPath?.port ?? 0,
      onReady: (p) => {
        if (p.isLink) {
          // Only a member we already know gets a link, and only over TCP.
          if (p.transport === 'tcp' && this.peers.has(p.publicKeyHex)) this.dataPath?.adopt(p)
          else p.destroy(SwarmError.PROTOCOL_VIOLATION('a data link from no connected member'))
          return
        }
        const old = this.peers.get(p.publicKeyHex)
        if (old && !replacesConnection(p, old, Buffer.compare(this.publicKey, p.publicKey) < 0, Date.now())) {
          this.log.debug('peer.duplicate', { peer: p.label, kept: old.initiator ? 'ours' : 'theirs' })
          p.destroy()
          return
        }
        old?.destroy()
        this.peers.set(p.publicKeyHex, p)
        // Each side dials a fast-path link for its own requests (see DataPath.links); a TCP member connection is fast already.
        if (p.transport === 'hyperswarm') this.dataPath?.connect(p)
        this.buildBook.attach(p)
        this.relay.attach(p)
        this.emit('peer-ready', p)
        this.mesh?.changed()
      },
      onPeerAddresses: (p, addresses) => { if (!p.isLink) this.mesh?.onAddresses(p, addresses) },
      onPingSample: (p) => {
        const offset = p.clockOffsetMs
        if (offset === null || Math.abs(offset) <= CLOCK_SKEW_MS) return
        const s = Math.round(Math.abs(offset) / 1000)
        this.problemList.report('peer.clock-skew', (via.inbound ? p.remoteHost : p.remoteAddress) ?? '?',
          `its clock is ${s} s ${offset > 0 ? 'ahead of' : 'behind'} ours: run NTP (chronyd, systemd-timesyncd) on both boxes`, { peer: p.label, offsetMs: offset })
      },
      onInventory: (p) => this.emit('inventory', p),
      onBuilds: (p, msg) => { if (this.peers.get(p.publicKeyHex) === p) this.buildBook.onMessage(p, msg) },
      onReport: (p, blake2b) => { this.relay.forgetHashes(); this.emit('report', p, blake2b) },
      onPieceMap: (p, msg) => { if (this.peers.get(p.publicKeyHex) === p) this.relay.onMessage(p, msg) },
      onClose: (p, reason) => {
        if (p.refusal) {
          const address = (via.inbound ? p.remoteHost : p.remoteAddress) ?? '?'
          if (p.refusal === 'wrong-network-key') this.problemList.report('peer.wrong-network-key', address, WRONG_NETWORK_KEY, { key: p.publicKeyHex.slice(0, 16) })
          else this.problemList.report('peer.incompatible', address, OTHER_VERSION, { key: p.publicKeyHex.slice(0, 16) })
        }
        this.connections.delete(p)
        // A member connection's offence: a data link refused in a race (its member connection just closed) is none.
        if (!p.isLink && !p.refusal && isOffence(reason)) this.coolDown(p, reason!)
        this.pastServed += p.bytesServed
        this.pastRelayed += p.bytesRelayed
        const past = this.pastTraffic.get(p.publicKeyHex) ?? { sent: 0, received: 0, relayed: 0 }
        this.pastTraffic.set(p.publicKeyHex, { sent: past.sent + p.bytesSent, received: past.received + p.bytesReceived, relayed: past.relayed + p.bytesRelayed })
        this.dataPath?.release(p)
        this.buildBook.detach(p)
        this.relay.detach(p)
        if (this.peers.get(p.publicKeyHex) === p) {
          this.peers.delete(p.publicKeyHex)
          this.dataPath?.drop(p.publicKeyHex)
          this.log.debug('peer.left', { peer: p.label, code: (reason as SwarmError | null)?.code, why: reason?.message })
          if ((reason as SwarmError | null)?.code === 'ERR_PEER_DEAD' && !p.isLink) this.mesh?.redial(p)
          this.emit('peer-closed', p)
        }
      }
    })
    this.connections.add(peer)
  }

  /** Whether a remote key is kept out: banned, or cooling off after an offence. */
  private refuses (publicKeyHex: string): boolean {
    if (this.isBanned(publicKeyHex)) return true
    const ms = this.coolOff.remaining(publicKeyHex)
    if (ms > 0) this.log.debug('peer.refused', { key: publicKeyHex.slice(0, 16), why: 'cooling off after an offence', ms })
    return ms > 0
  }

  /** A peer cut off for an offence (a budget, a protocol violation) may not come back at once: see limits.coolOffMs. */
  private coolDown (p: Peer, reason: Error): void {
    const { ms, offences } = this.coolOff.offend(p.publicKeyHex)
    this.log.warn('peer.cooling-off', { peer: p.label, code: (reason as SwarmError).code, why: reason.message, ms, offences })
  }

  /** Leaves the network and closes every connection. Idempotent; a swarm once stopped does not start again. */
  stop (): Promise<void> {
    this.stopping ??= (async () => {
      this.destroyed = true
      this.state = 'stopped'
      for (const wake of this.redialTimers) wake()
      this.mesh?.stop()
      this.buildBook.stop()
      for (const peer of this.connections) peer.destroy(SwarmError.DESTROYED())
      await this.dataPath?.close()
      await this.discovery?.stop()
    })()
    return this.stopping
  }
}
