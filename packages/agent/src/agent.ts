import { EventEmitter } from 'node:events'
import { rm } from 'node:fs/promises'
import type { Server as HttpServer } from 'node:http'
import type { Server } from 'node:net'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { Store } from '@distswarm/store'
import { DistSwarm, signBuild, verifyBuild, type Peer } from '@distswarm/swarm'
import { Advertised } from './advertised.js'
import { Binhost } from './binhost.js'
import type {
  BinhostSource, BuildsResult, FetchParams, FetchResult, GcParams, GcResult, LsParams, LsResult, PeerInfo, StatusResult, UpstreamParams, VerifyParams, VerifyResult, WhereResult
} from './api.js'
import type { AgentConfig } from './config.js'
import { startControlServer } from './control.js'
import { AgentError } from './errors.js'
import { Fetcher } from './fetcher.js'
import { Penalties } from './penalties.js'
import { ControlHandlers, inventory } from './handlers.js'
import { loadOrCreateIdentity } from './identity.js'
import { ManifestPolicy } from './manifest-policy.js'
import { startGateway, type AgentHttp } from './http.js'
import { formatHostPort, Metrics, startMetricsServer, stopMetricsServer, type MetricsSnapshot } from './metrics.js'
import { Quota } from './quota.js'

export interface AgentEvents {
  'peer-ready': [PeerInfo]
  'peer-closed': [PeerInfo]
  fetched: [FetchResult]
  'fetch-failed': [{ query: string, code: string, message: string }]
  /** A fetch answered before any download: the file was here (`local`), or no peer had it (`miss`). */
  lookup: [{ name: string, outcome: 'local' | 'miss', bytes?: number }]
  /** portage-fetch's fallback downloaded a file upstream. */
  upstream: [{ name: string, bytes: number }]
}

export interface AgentInit {
  /**
   * The root the agent and the libraries log under: its child `agent` (with
   * fetch, manifest, quota, … below it), `store`, `swarm` and `http`.
   * Default debugLogger('distswarm').
   */
  logger?: Logger
}

/** The parts that exist once start() has made them. */
interface Running {
  swarm: DistSwarm
  fetcher: Fetcher
  quota: Quota
  handlers: ControlHandlers
  binhost: Binhost
}

/** The counters a Fetcher's events move. */
function countFetcherEvents (metrics: Metrics, fetcher: Fetcher): void {
  fetcher.on('fault', () => { metrics.peerFaults++ })
  fetcher.on('banned', () => { metrics.peerBans++ })
  fetcher.on('verification-failed', () => { metrics.verificationFailures++ })
  fetcher.on('published', (r) => { metrics.transferSeconds.observe(r.durationMs / 1000) })
}

/**
 * One box's agent: indexes its distfiles, advertises them to the network,
 * fetches what it lacks into the cache dir (the Fetcher), and answers the
 * CLI (ControlHandlers). This class only wires the parts together and
 * starts and stops them.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig
  private readonly root: Logger
  private readonly log: Logger
  private readonly store: Store
  private readonly policy: ManifestPolicy
  private readonly advertised: Advertised
  private readonly metrics = new Metrics()
  /** Every peer key met: what traffic() is summed over, closed connections included. */
  private readonly peersMet = new Set<string>()
  private readonly startedAt = Date.now()
  private running: Running | null = null
  /** What start() made so far, so that a failed start stops it. */
  private swarm: DistSwarm | null = null
  private quota: Quota | null = null
  private fetcher: Fetcher | null = null
  private binhostPart: Binhost | null = null
  /** Peers' verification faults, for distfiles and builds alike. */
  private readonly penalties = new Penalties()
  private control: Server | null = null
  private metricsServer: HttpServer | null = null
  private metricsAddress: string | null = null
  private gateway: AgentHttp | null = null
  private starting: Promise<void> | null = null
  private stopping: Promise<void> | null = null
  private tearingDown: Promise<void> | null = null

  constructor (config: AgentConfig, init: AgentInit = {}) {
    super()
    this.config = config
    // Each library logs under its own name beside the agent's: distswarm:agent, distswarm:store, distswarm:swarm.
    this.root = init.logger ?? debugLogger('distswarm')
    this.log = this.root.child('agent')
    this.store = new Store({ distdirs: config.distdirs, cacheDir: config.cacheDir, stateDir: config.stateDir, logger: this.root.child('store') })
    this.policy = new ManifestPolicy(config.repos, this.log.child('manifest'))
    this.advertised = new Advertised({ store: this.store, agrees: (f) => this.policy.agrees(f), builds: () => this.binhostPart, logger: this.log.child('advertised') })
  }

  /**
   * Indexes, joins the network and opens the control socket. Idempotent;
   * when a step fails, whatever started is stopped again and the error
   * thrown (ERR_CONTROL_IN_USE when another agent answers on the socket).
   */
  start (): Promise<void> {
    if (this.stopping) return Promise.reject(AgentError.NOT_STARTED())
    this.starting ??= this.startOnce()
    return this.starting
  }

  private async startOnce (): Promise<void> {
    try {
      await this.bringUp()
    } catch (err) {
      // Parts may have been running before the failing step: the agent is not started.
      this.running = null
      await this.teardown()
      throw err
    }
  }

  private async bringUp (): Promise<void> {
    const config = this.config
    // The first index (worker threads) runs while the Manifests load; parts
    // that read the inventory start once it is whole.
    const indexed = this.store.start()
    indexed.catch(() => {})
    const [keyPair] = await Promise.all([loadOrCreateIdentity(config.stateDir), this.policy.start()])
    await indexed
    this.log.debug('store.indexed', { files: this.store.size })
    const swarm = this.swarm = new DistSwarm({
      networkKey: config.networkKey,
      keyPair,
      bootstrap: config.bootstrap,
      host: config.host,
      port: config.port,
      dataPort: config.dataPort,
      staticPeers: config.staticPeers,
      rediscoverMs: config.rediscoverMs,
      ...(config.deadPeerMs === undefined ? {} : { limits: { deadAfterMs: config.deadPeerMs } }),
      name: config.name,
      seeder: config.seed,
      lanDiscovery: config.lanDiscovery,
      source: this.advertised,
      isBanned: (key) => this.penalties.isBanned(key),
      logger: this.root.child('swarm')
    })
    const fetcher: Fetcher = this.fetcher = new Fetcher({
      store: this.store,
      swarm,
      logger: this.log.child('fetch'),
      penalties: this.penalties,
      afterPublish: async () => { await quota.enforce() }
    })
    const binhost = this.binhostPart = new Binhost({
      config,
      keyPair,
      store: this.store,
      network: swarm,
      sign: signBuild,
      verify: verifyBuild,
      penalties: this.penalties,
      peerName: (key) => swarm.readyPeers().find((p) => p.publicKeyHex === key)?.name ?? null,
      logger: this.log.child('binhost')
    })
    const quota: Quota = this.quota = new Quota({
      store: this.store,
      cacheDir: config.cacheDir,
      maxBytes: config.cacheMaxBytes,
      holders: (hex) => swarm.find({ blake2b: hex })[0]?.holders.length ?? 0,
      referenced: (name) => this.policy.references(name),
      pinned: (hex): boolean => fetcher.isFetching(hex),
      logger: this.log.child('quota')
    })
    const handlers = new ControlHandlers({
      config, store: this.store, swarm, fetcher, policy: this.policy, quota, binhost, metrics: this.metrics, log: this.log, startedAt: this.startedAt, metricsAddress: () => this.metricsAddress, http: () => this.gateway,
      notify: {
        lookup: (e) => this.emit('lookup', e),
        upstream: (e) => this.emit('upstream', e)
      }
    })
    this.wire(swarm, fetcher, handlers)
    fetcher.start()
    if (config.metrics) {
      const { server, address } = await startMetricsServer(config.metrics, () => this.metrics.render(this.metricsSnapshot(swarm)))
      this.metricsServer = server
      this.metricsAddress = formatHostPort(address)
    }
    await binhost.start()
    this.running = { swarm, fetcher, quota, handlers, binhost }
    // After `running`: the gateway's first request may come at once.
    this.gateway = await startGateway(this, config, {
      metrics: () => this.metrics.render(this.metricsSnapshot(swarm)),
      peers: async () => handlers.peers(),
      events: this,
      logger: this.root.child('http')
    })
    // Last before joining: a client that reaches the control socket finds an agent whose every part started.
    this.control = await startControlServer(config.control, handlers.handlers())
    await swarm.start()
    quota.start()
  }

  /** Events between the parts, and the agent's own. */
  private wire (swarm: DistSwarm, fetcher: Fetcher, handlers: ControlHandlers): void {
    swarm.on('peer-ready', (p) => {
      this.peersMet.add(p.publicKeyHex)
      this.emit('peer-ready', handlers.peerInfo(p))
    })
    swarm.on('peer-closed', (p) => this.emit('peer-closed', handlers.peerInfo(p)))
    swarm.on('report', (p: Peer, blake2b) => { void this.advertised.onReport(p, blake2b) })
    this.store.on('added', (file) => { if (this.policy.agrees(file)) swarm.announce([file]) })
    this.store.on('removed', (file) => swarm.announce([], [file.blake2b]))
    // What peers may see depends on the Manifests: tell them what a sync changed.
    this.policy.on('reload', ({ agreedBefore }) => {
      const added = []
      const removed = []
      for (const f of this.store.entries()) {
        const now = this.policy.conflict(f) === null
        if (now && !agreedBefore(f)) added.push(f)
        if (!now && agreedBefore(f)) removed.push(f.blake2b)
      }
      if (added.length + removed.length === 0) return
      this.log.info('manifest.readvertise', { advertised: added.length, withdrawn: removed.length })
      swarm.announce(added, removed)
    })
    countFetcherEvents(this.metrics, fetcher)
    if (this.binhostPart?.fetcher) countFetcherEvents(this.metrics, this.binhostPart.fetcher)
    fetcher.on('published', (r) => this.emit('fetched', r))
    fetcher.on('failed', ({ name, error }) => {
      const e = error as { code?: string, message?: string }
      this.emit('fetch-failed', { query: name, code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(error) })
    })
  }

  private metricsSnapshot (swarm: DistSwarm): MetricsSnapshot {
    const peers = { tcp: 0, hyperswarm: 0 }
    for (const p of swarm.readyPeers()) peers[swarm.pathTo(p.publicKeyHex)]++
    const traffic = { sent: 0, received: 0 }
    for (const key of this.peersMet) {
      const t = swarm.traffic(key)
      traffic.sent += t.sent
      traffic.received += t.received
    }
    return { peers, traffic, relayed: swarm.relayedBytes(), ...inventory(this.store) }
  }

  private parts (): Running {
    if (!this.running || this.stopping) throw AgentError.NOT_STARTED()
    return this.running
  }

  status (): StatusResult {
    return this.parts().handlers.status()
  }

  where (query: string): WhereResult {
    return this.parts().handlers.where(query)
  }

  ls (params: LsParams): LsResult {
    return this.parts().handlers.ls(params)
  }

  /** The binhost the gateway serves at /binpkgs/: the merged Packages index, and this box's or its peers' build files. */
  binhost (): BinhostSource {
    return this.parts().binhost.source()
  }

  /** The builds across the network (`distswarm binpkgs [ATOM]`): only those of the package `atom` names when given. */
  builds (atom?: string): BuildsResult {
    return this.parts().handlers.binpkgs({ atom })
  }

  upstream (params: UpstreamParams): { fetchedUpstream: number } {
    return this.parts().handlers.upstream(params)
  }

  /** What fetch() looks a query up by: a name the Manifests pin becomes their BLAKE2B; anything else stays. */
  pinnedQuery (query: string): string {
    return this.parts().handlers.pinnedQuery(query)
  }

  async fetch (params: FetchParams): Promise<FetchResult> {
    return await this.parts().handlers.fetch(params)
  }

  async verify (params: VerifyParams): Promise<VerifyResult> {
    return await this.parts().handlers.verify(params)
  }

  async gc (params: GcParams): Promise<GcResult> {
    return await this.parts().handlers.gc(params)
  }

  /** Stops serving and leaves the network. Idempotent; waits for a start under way first. */
  stop (): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => {})
      await this.teardown()
    })()
    return this.stopping
  }

  /** stop(), by its older name. */
  close (): Promise<void> {
    return this.stop()
  }

  /** Stops whatever was started, in the reverse order; once. */
  private teardown (): Promise<void> {
    this.tearingDown ??= (async () => {
      const control = this.control
      if (control) {
        await new Promise<void>((resolve) => control.close(() => resolve()))
        await rm(this.config.control, { force: true })
      }
      if (this.metricsServer) await stopMetricsServer(this.metricsServer)
      await this.gateway?.stop()
      this.policy.stop()
      await this.quota?.stop()
      this.fetcher?.stop()
      await this.binhostPart?.stop()
      await this.swarm?.stop()
      await this.store.stop()
    })()
    return this.tearingDown
  }
}
