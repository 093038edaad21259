import { EventEmitter } from 'node:events'
import { rm } from 'node:fs/promises'
import type { Server as HttpServer } from 'node:http'
import type { Server } from 'node:net'
import { dirname, resolve } from 'node:path'
import createDebug from 'debug'
import { isHexDigest, isValidName, toHex, type FileEntry } from '@distswarm/protocol'
import {
  ManifestIndex, planEviction, Store, StoreError, watchRepos, type Download, type EvictionPlan, type LocalFile, type ManifestEntry, type ManifestWatcher
} from '@distswarm/store'
import { DistSwarm, sourcesOf, type LocalSource, type Peer, type PieceSource } from '@distswarm/swarm'
import type {
  FetchParams, FetchResult, FileInfo, GcParams, GcResult, LsParams, LsResult, PeerInfo, StatusResult, TransferInfo, UpstreamParams, VerifyParams, VerifyResult, WhereResult
} from './api.js'
import { findRepos, type AgentConfig } from './config.js'
import { startControlServer } from './control.js'
import { AgentError } from './errors.js'
import { loadOrCreateIdentity } from './identity.js'
import { formatHostPort, Metrics, startMetricsServer, stopMetricsServer, type MetricsSnapshot } from './metrics.js'

const log = createDebug('distswarm:agent')

const RECHECK_EVERY_MS = 10 * 60_000
/** HashRequest answers kept (each may stand for a read of a whole large file). */
const PIECE_HASH_CACHE = 32
/** Download rounds of one fetch at most: each after a failed whole-file check goes without the peers it found wrong. */
const MAX_ROUNDS = 4
/**
 * How often the cache quota is checked besides after each fetch (it catches a
 * quota lowered across a restart). Not at start: peers' inventories, which
 * decide what may go, are not in yet.
 */
const GC_INTERVAL_MS = 5 * 60_000

export interface AgentEvents {
  'peer-ready': [PeerInfo]
  'peer-closed': [PeerInfo]
  fetched: [FetchResult]
  'fetch-failed': [{ query: string, code: string, message: string }]
}

function fileInfo (e: FileEntry): FileInfo {
  return { name: e.name, size: e.size, blake2b: toHex(e.blake2b), sha512: toHex(e.sha512) }
}

/** Whether a file (hex digests; '' for an unknown SHA512) is the one a Manifest entry describes. */
function matchesManifest (e: ManifestEntry, f: FileInfo): boolean {
  return e.size === f.size &&
    (e.blake2b === null || e.blake2b === f.blake2b) &&
    (e.sha512 === null || f.sha512 === '' || e.sha512 === f.sha512)
}

function peerInfo (p: Peer, faults: number, path: PeerInfo['path'], traffic: { sent: number, received: number }, lastSeen: number | null): PeerInfo {
  return {
    name: p.name,
    publicKey: p.publicKeyHex,
    address: p.remoteAddress,
    files: p.files.size,
    bytesSent: traffic.sent,
    bytesReceived: traffic.received,
    connectedAt: new Date(p.connectedAt).toISOString(),
    faults,
    path,
    rttMs: p.rttMs,
    lastSeenAt: new Date(lastSeen ?? p.lastReceivedAt).toISOString()
  }
}

const byName = (a: { name: string }, b: { name: string }): number => a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/**
 * One box's agent: indexes its distfiles, advertises them to the network,
 * fetches what it lacks into the cache dir, and answers the CLI.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig
  private readonly store: Store
  private swarm: DistSwarm | null = null
  private control: Server | null = null
  private metricsServer: HttpServer | null = null
  private metricsAddress: string | null = null
  private readonly metrics = new Metrics()
  /** Every peer key met: what traffic() is summed over, closed connections included. */
  private readonly peersMet = new Set<string>()
  private readonly inFlight = new Map<string, Promise<FetchResult>>()
  private readonly startedAt = Date.now()
  private readonly counters = { completed: 0, failed: 0, bytesFetched: 0 }
  /** What portage-fetch reported downloading upstream through its fallback. */
  private readonly upstreamCounters = { files: 0, bytes: 0 }
  /** The downloads under way, by hex digest, for status (entries leave with their inFlight entry). */
  private readonly transfers = new Map<string, { name: string, blake2b: string, size: number, startedAt: number, download: Download | null }>()
  private closed = false
  private manifest: ManifestIndex | null = null
  /** When each digest was last re-hashed on a peer's report. */
  private readonly rechecked = new Map<string, number>()
  private manifestWatcher: ManifestWatcher | null = null
  /** Quota runs, one at a time. */
  private gcQueue: Promise<unknown> = Promise.resolve()
  private gcTimer: NodeJS.Timeout | null = null
  /** What peers see: the store, less files that contradict the Manifest entry of their name. */
  private readonly advertised: LocalSource = {
    // Peers ask for a file (a range, its piece hashes) through here: each ask is a use of it.
    get: (d) => {
      const f = this.store.get(d)
      if (!f || !this.agreesWithManifest(f)) return undefined
      this.store.touch(f.blake2b)
      return f
    },
    entries: () => [...this.store.entries()].filter((f) => this.agreesWithManifest(f)),
    hashPieces: async (d, offset, length, pieceSize) => {
      const file = this.advertised.get(d)
      if (!file) return undefined
      // Each answer reads the whole range: asked again (by the same or
      // another peer), it comes from here while the file is unchanged.
      const key = `${toHex(d)}:${offset}:${length}:${pieceSize}:${file.path}`
      const cached = this.pieceHashes.get(key)
      if (cached) return cached
      const hashes = await this.store.hashPieces(d, { offset, length, pieceSize })
      if (hashes) {
        this.pieceHashes.set(key, hashes)
        if (this.pieceHashes.size > PIECE_HASH_CACHE) this.pieceHashes.delete(this.pieceHashes.keys().next().value!)
      }
      return hashes
    }
  }
  /** Recent answers to HashRequests, oldest first. */
  private readonly pieceHashes = new Map<string, Buffer[]>()

  constructor (config: AgentConfig) {
    super()
    this.config = config
    this.store = new Store({ distdirs: config.distdirs, cacheDir: config.cacheDir, stateDir: config.stateDir })
  }

  /** Indexes, joins the network and opens the control socket. */
  async start (): Promise<void> {
    const keyPair = await loadOrCreateIdentity(this.config.stateDir)
    const repos = await findRepos(this.config.repos)
    if (repos.length > 0) {
      this.manifest = await ManifestIndex.load(repos)
      log('Manifest index: %d distfiles from %s; %d lines skipped', this.manifest.size, repos.join(' '), this.manifest.problemCount)
      for (const p of this.manifest.problems.slice(0, 10)) log('%s:%d: %s', p.file, p.line, p.reason)
      this.manifestWatcher = watchRepos(this.manifest)
      this.manifestWatcher.on('reload', (index) => {
        // What peers may see depends on the Manifests: tell them what a sync changed.
        const before = this.swarm ? new Set([...this.store.entries()].filter((f) => this.manifestConflict(f) === null)) : null
        this.manifest = index
        log('Manifest index reloaded: %d distfiles', index.size)
        if (before) this.readvertise(before)
      })
    }
    await this.store.start()
    log('indexed %d files', this.store.size)
    const swarm = this.swarm = new DistSwarm({
      networkKey: this.config.networkKey,
      keyPair,
      bootstrap: this.config.bootstrap,
      host: this.config.host,
      port: this.config.port,
      dataPort: this.config.dataPort,
      staticPeers: this.config.staticPeers,
      rediscoverMs: this.config.rediscoverMs,
      name: this.config.name,
      seeder: this.config.seed,
      source: this.advertised
    })
    const info = (p: Peer): PeerInfo =>
      peerInfo(p, swarm.faultsOf(p.publicKeyHex), swarm.pathTo(p.publicKeyHex), swarm.traffic(p.publicKeyHex), swarm.lastSeen(p.publicKeyHex))
    swarm.on('peer-ready', (p) => {
      this.peersMet.add(p.publicKeyHex)
      this.emit('peer-ready', info(p))
    })
    swarm.on('peer-closed', (p) => this.emit('peer-closed', info(p)))
    swarm.on('report', (p, blake2b) => { void this.onReport(p, blake2b) })
    this.store.on('added', (file) => { if (this.agreesWithManifest(file)) swarm.announce([file]) })
    this.store.on('removed', (file) => swarm.announce([], [file.blake2b]))
    this.control = await startControlServer(this.config.control, {
      status: async () => this.status(),
      peers: async () => swarm.readyPeers().map(info),
      where: async (params) => this.where(params.query),
      fetch: (params) => this.fetch(params),
      verify: (params) => this.verify(params),
      gc: (params) => this.gc(params),
      ls: async (params) => this.ls(params),
      upstream: async (params) => this.upstream(params)
    })
    if (this.config.metrics) {
      const { server, address } = await startMetricsServer(this.config.metrics, () => this.metrics.render(this.metricsSnapshot()))
      this.metricsServer = server
      this.metricsAddress = formatHostPort(address)
    }
    await swarm.listen()
    if (this.config.cacheMaxBytes !== null) {
      this.gcTimer = setInterval(() => { void this.enforceQuota() }, GC_INTERVAL_MS)
      this.gcTimer.unref()
    }
  }

  status (): StatusResult {
    const swarm = this.requireSwarm()
    const { bytes } = this.inventory()
    const dht = swarm.address()
    return {
      name: this.config.name,
      seed: this.config.seed,
      publicKey: toHex(swarm.publicKey),
      network: toHex(swarm.topic).slice(0, 16),
      dhtAddress: dht ? `${dht.host}:${dht.port}` : null,
      dataPort: swarm.dataPort,
      control: this.config.control,
      metricsAddress: this.metricsAddress,
      cacheDir: this.config.cacheDir,
      distdirs: this.config.distdirs,
      files: this.store.size,
      bytes,
      cache: { bytes: this.store.cacheBytes, maxBytes: this.config.cacheMaxBytes },
      peers: swarm.readyPeers().length,
      fetches: { inFlight: this.inFlight.size, ...this.counters },
      transfers: [...this.transfers.values()].map((t): TransferInfo => ({
        name: t.name, blake2b: t.blake2b, size: t.size, bytesDone: t.download?.written ?? 0, startedAt: new Date(t.startedAt).toISOString()
      })),
      traffic: {
        servedToPeers: swarm.servedBytes(),
        fetchedFromPeers: this.counters.bytesFetched,
        fetchedUpstream: this.upstreamCounters.bytes,
        upstreamFiles: this.upstreamCounters.files
      },
      manifest: {
        repos: [...(this.manifest?.repos ?? [])],
        names: this.manifest?.size ?? 0,
        problems: this.manifest?.problemCount ?? 0
      },
      uptimeMs: Date.now() - this.startedAt
    }
  }

  /** Files indexed and their bytes. */
  private inventory (): { files: number, bytes: number } {
    let bytes = 0
    for (const f of this.store.entries()) bytes += f.size
    return { files: this.store.size, bytes }
  }

  private metricsSnapshot (): MetricsSnapshot {
    const swarm = this.requireSwarm()
    const peers = { tcp: 0, hyperswarm: 0 }
    for (const p of swarm.readyPeers()) peers[swarm.pathTo(p.publicKeyHex)]++
    const traffic = { sent: 0, received: 0 }
    for (const key of this.peersMet) {
      const t = swarm.traffic(key)
      traffic.sent += t.sent
      traffic.received += t.received
    }
    return { peers, traffic, ...this.inventory() }
  }

  where (query: string): WhereResult {
    const byDigest = isHexDigest(query.toLowerCase())
    const key = byDigest ? { blake2b: query.toLowerCase() } : { name: query }
    const local: LocalFile[] = byDigest ? [this.store.get(key.blake2b!)].filter((f) => f !== undefined) : this.store.findByName(query)
    return {
      query,
      local: local.map((f) => ({ ...fileInfo(f), path: f.path })),
      remote: this.requireSwarm().find(key).map((r) => ({
        ...fileInfo(r.entry),
        holders: r.holders.map((p) => ({ name: p.name, publicKey: p.publicKeyHex }))
      }))
    }
  }

  /** This box's inventory, or the files a peer (its name, a key prefix or a name prefix) advertises. */
  ls (params: LsParams): LsResult {
    if (params.peer === undefined) {
      const cacheDir = resolve(this.config.cacheDir)
      const files = [...this.store.entries()].map((f) => ({
        ...fileInfo(f), where: dirname(f.path) === cacheDir ? 'cache' as const : 'distdir' as const, path: f.path
      }))
      return { peer: null, files: files.sort(byName) }
    }
    const q = params.peer
    const peers = this.requireSwarm().readyPeers()
    // the exact name, else a key prefix, else a name prefix: whichever matches first
    const tries = [
      (p: Peer) => p.name === q,
      (p: Peer) => /^[0-9a-f]+$/i.test(q) && p.publicKeyHex.startsWith(q.toLowerCase()),
      (p: Peer) => q !== '' && p.name.startsWith(q)
    ]
    const matches = tries.map((t) => peers.filter(t)).find((m) => m.length > 0) ?? []
    if (matches.length > 1) throw AgentError.AMBIGUOUS_PEER(q, matches.map((p) => p.publicKeyHex))
    const peer = matches[0]
    if (!peer) throw AgentError.NO_SUCH_PEER(q)
    return {
      peer: { name: peer.name, publicKey: peer.publicKeyHex },
      files: [...peer.files.values()].map((e) => ({ ...fileInfo(e), where: 'peer' as const, path: null })).sort(byName)
    }
  }

  /** portage-fetch says its fallback downloaded a file upstream: counted for status, nothing else. */
  upstream (params: UpstreamParams): { fetchedUpstream: number } {
    if (!isValidName(params.name)) throw AgentError.BAD_REQUEST(`invalid file name ${JSON.stringify(params.name.slice(0, 300))}`)
    this.upstreamCounters.files++
    this.upstreamCounters.bytes += params.bytes
    log('portage-fetch fetched %s upstream: %d bytes', params.name, params.bytes)
    return { fetchedUpstream: this.upstreamCounters.bytes }
  }

  /**
   * Makes the file named or addressed by `query` present on this box: at
   * once when it already is, else fetched from peers into the cache dir,
   * verified and published. Concurrent calls for one file share one download.
   * A seed refuses every fetch (ERR_SEED_ONLY), so it never writes a byte it was not given.
   */
  async fetch (params: FetchParams): Promise<FetchResult> {
    try {
      const result = await this.fetchFile(params)
      this.metrics.fetches[result.source]++
      return result
    } catch (err) {
      this.metrics.fetches[(err as { code?: unknown }).code === 'ERR_NOT_FOUND' ? 'not_found' : 'failed']++
      throw err
    }
  }

  /** fetch(), less counting its result. */
  private async fetchFile (params: FetchParams): Promise<FetchResult> {
    if (this.config.seed) throw AgentError.SEED_ONLY()
    const started = Date.now()
    const query = typeof params.query === 'string' ? params.query : ''
    if (!query) throw AgentError.BAD_REQUEST('fetch needs a file name or BLAKE2B digest')
    const sha512 = typeof params.sha512 === 'string' && params.sha512 ? params.sha512.toLowerCase() : undefined
    if (sha512 !== undefined && !isHexDigest(sha512)) throw AgentError.BAD_REQUEST('sha512 must be 128 hex characters')
    const name = typeof params.name === 'string' && params.name ? params.name : undefined
    if (name !== undefined && !isValidName(name)) throw AgentError.BAD_REQUEST(`invalid file name ${JSON.stringify(name.slice(0, 300))}`)

    // A name the Manifests know is fetched by their digest and size, whatever peers call theirs.
    const pinned = isHexDigest(query.toLowerCase()) ? undefined : this.manifestPin(query)
    const found = this.where(pinned?.blake2b ?? query)
    const wanted = (f: FileInfo): boolean =>
      (sha512 === undefined || f.sha512 === '' || f.sha512 === sha512) && (pinned === undefined || matchesManifest(pinned, f))
    const local = found.local.find(wanted)
    if (local) {
      // portage-fetch links or copies it next: the cache keeps what Portage uses.
      this.store.touch(local.blake2b)
      return { ...local, source: 'local', durationMs: Date.now() - started, resumedFrom: 0 }
    }

    const candidates = found.remote.filter(wanted)
    if (candidates.length === 0) {
      if (found.remote.length > 0) throw AgentError.DIGEST_MISMATCH(query, 'SHA512')
      throw AgentError.NOT_FOUND(query)
    }
    if (candidates.length > 1) throw AgentError.AMBIGUOUS(query, candidates.map((c) => c.blake2b))
    const target = candidates[0]!
    let pending = this.inFlight.get(target.blake2b)
    if (!pending) {
      pending = this.download(target, { sha512: sha512 ?? pinned?.sha512 ?? undefined, name: name ?? (pinned ? query : target.name), started }).finally(() => this.inFlight.delete(target.blake2b))
      this.inFlight.set(target.blake2b, pending)
    }
    return pending
  }

  private async download (target: FileInfo, want: { sha512: string | undefined, name: string, started: number }): Promise<FetchResult> {
    const swarm = this.requireSwarm()
    const entry = swarm.find({ blake2b: target.blake2b })[0]?.entry
    if (!entry) throw AgentError.NOT_FOUND(target.name)
    const expected = {
      name: want.name,
      size: entry.size,
      blake2b: entry.blake2b,
      sha512: want.sha512 !== undefined ? Buffer.from(want.sha512, 'hex') : entry.sha512
    }
    // Peers this fetch goes without: shown to have sent wrong bytes, or suspected of it.
    const excluded = new Set<string>()
    const blame = (key: string, why: string): void => {
      const wasBanned = swarm.isBanned(key)
      swarm.penalize(key, why)
      this.metrics.peerFaults++
      if (!wasBanned && swarm.isBanned(key)) this.metrics.peerBans++
      swarm.report(key, entry.blake2b)
      excluded.add(key)
    }
    const transfer = { name: want.name, blake2b: target.blake2b, size: entry.size, startedAt: want.started, download: null as Download | null }
    this.transfers.set(target.blake2b, transfer)
    try {
      const download = transfer.download = await this.store.begin(expected)
      let kept = false
      try {
        // Gone without for one round when holders split evenly over some pieces (see Verdict.suspect).
        let suspect: string | null = null
        // Where each written piece came from, by offset.
        const from = new Map<number, PieceSource>()
        // The pieces to fetch again over wrong ones, or null for the rest of the file.
        let redo: PieceSource[] | null = null
        for (let round = 1; ; round++) {
          try {
            for (const p of await swarm.download(entry, download, { exclude: excluded, ranges: redo ?? undefined })) from.set(p.offset, p)
          } catch (err) {
            if (redo === null) {
              // The sources failed, not the bytes: keep them for the next attempt to resume.
              // (Wrong sizes and full disks were discarded by the store already.)
              await download.suspend()
              kept = true
            }
            throw err
          }
          const problem = await download.verify()
          if (problem === null) break
          this.metrics.verificationFailures++
          if (round === MAX_ROUNDS) throw StoreError.VERIFY_FAILED(want.name, problem)
          const pieces = [...from.values()].sort((a, b) => a.offset - b.offset)
          const next = await this.repair(download, entry, pieces, problem)
          if (next.redo === null) from.clear()
          redo = next.redo
          // The last round went without the suspect and still failed: it gets its turn back.
          if (suspect !== null) excluded.delete(suspect)
          for (const key of next.liars) blame(key, problem)
          suspect = next.suspect
          if (suspect !== null) excluded.add(suspect)
          const others = swarm.find({ blake2b: target.blake2b })[0]?.holders.filter((p) => !excluded.has(p.publicKeyHex)) ?? []
          if (others.length === 0) throw StoreError.VERIFY_FAILED(want.name, problem)
          log('%s: %s; fetching %s again from %d peer(s)', want.name, problem, redo ? `${redo.length} piece(s)` : 'everything', others.length)
        }
        // The round that went without the suspect verified: it was wrong.
        if (suspect !== null) blame(suspect, 'bytes that disagreed with the verified file')
        const file = await this.store.commit(download)
        // Still in flight, so pinned: the quota may take other files, never the one this fetch is about to return.
        await this.enforceQuota()
        const result: FetchResult = {
          ...fileInfo(file), path: file.path, source: 'swarm', durationMs: Date.now() - want.started, resumedFrom: download.resumedFrom
        }
        this.counters.completed++
        this.counters.bytesFetched += file.size
        this.metrics.transferSeconds.observe(result.durationMs / 1000)
        this.emit('fetched', result)
        return result
      } catch (err) {
        if (!kept) await download.abort()
        throw err
      }
    } catch (err) {
      this.counters.failed++
      const e = err as { code?: string, message?: string }
      this.emit('fetch-failed', { query: want.name, code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(err) })
      throw err
    } finally {
      this.transfers.delete(target.blake2b)
    }
  }

  /**
   * A download failed its whole-file check: finds the wrong pieces from the
   * holders' piece hashes, to be fetched again over the wrong bytes (`redo`).
   * When no piece stands out, the file starts over (`redo` null) and every
   * source is a liar (but for bytes an earlier run left, whose sources are
   * unknown: then nobody is blamed the first time).
   */
  private async repair (download: Download, entry: FileEntry, pieces: readonly PieceSource[], problem: string): Promise<{ liars: string[], suspect: string | null, redo: PieceSource[] | null }> {
    const swarm = this.requireSwarm()
    const verdict = await swarm.diagnose(entry, pieces, (range) => this.store.hashWritten(download, range))
    if (verdict && verdict.bad.length > 0) return { ...verdict, redo: verdict.bad.map((i) => pieces[i]!) }
    const resumed = (pieces[0]?.offset ?? download.written) > 0
    await download.truncate(0)
    log('%s: %s, and no piece stands out%s', entry.name, problem, resumed ? '; starting over, the bytes resumed from may be at fault' : '')
    return { liars: resumed ? [] : sourcesOf(pieces), suspect: null, redo: null }
  }

  /**
   * Re-hashes every file of the cache dir against the index and the
   * Manifest entry of its name; with `remove`, deletes the bad ones (which
   * withdraws them from peers). DISTDIR files are Portage's: never looked at here.
   */
  verify (params: VerifyParams): Promise<VerifyResult> {
    return this.store.verify({
      remove: params.remove === true,
      judge: (file) => {
        const entries = this.manifestConflict(file)
        if (entries === null) return null
        return { expected: entries.find((e) => e.blake2b !== null)?.blake2b ?? null, detail: 'its hashes contradict the Manifest entry of its name' }
      }
    })
  }

  /**
   * Applies the cache quota now (see planEviction for the order), or with
   * `dryRun` only says what it would remove. Files of fetches in flight are
   * never chosen. Runs one at a time.
   */
  gc (params: GcParams): Promise<GcResult> {
    const run = this.gcQueue.then(() => this.collect(params.dryRun === true))
    this.gcQueue = run.catch(() => {})
    return run
  }

  /** After a fetch and every GC_INTERVAL_MS: evicts when over the quota; never throws. */
  private async enforceQuota (): Promise<void> {
    if (this.config.cacheMaxBytes === null || this.closed) return
    try {
      const r = await this.gc({})
      if (r.files.length > 0) log('cache over its quota by %d bytes: evicted %d files, %d -> %d bytes', r.overBy, r.files.filter((f) => f.removed).length, r.bytesBefore, r.bytesAfter)
    } catch (err) {
      log('applying the cache quota failed: %s', (err as Error).message)
    }
  }

  private async collect (dryRun: boolean): Promise<GcResult> {
    const plan = this.quotaPlan()
    const removed = new Set(dryRun ? [] : await this.store.evict(plan.chosen.map((c) => c.path)))
    const gone = plan.chosen.filter((c) => dryRun || removed.has(c.path))
    return {
      cacheDir: this.config.cacheDir,
      dryRun,
      maxBytes: plan.maxBytes,
      bytesBefore: plan.bytesBefore,
      filesBefore: plan.files,
      bytesAfter: plan.bytesBefore - gone.reduce((n, c) => n + c.size, 0),
      filesAfter: plan.files - gone.length,
      overBy: plan.overBy,
      files: plan.chosen.map((c) => ({
        name: c.name,
        size: c.size,
        blake2b: c.blake2b,
        path: c.path,
        reason: c.reason,
        lastUsed: new Date(c.usedAt).toISOString(),
        peers: c.peers,
        removed: removed.has(c.path)
      }))
    }
  }

  /** What the quota would take now: every cache file, weighed by the Manifests and by what connected peers hold. */
  private quotaPlan (): EvictionPlan & { files: number } {
    const swarm = this.requireSwarm()
    const manifest = this.manifest
    const candidates = this.store.cacheFiles().map((f) => {
      const hex = toHex(f.blake2b)
      return {
        path: f.path,
        name: f.name,
        size: f.size,
        blake2b: hex,
        usedAt: f.usedAt,
        // Without Manifests nothing tells a stale name from a live one.
        referenced: manifest === null || manifest.has(f.name),
        peers: swarm.find({ blake2b: hex })[0]?.holders.length ?? 0,
        pinned: this.inFlight.has(hex)
      }
    })
    return { ...planEviction(candidates, this.config.cacheMaxBytes), files: candidates.length }
  }

  /**
   * A peer says our bytes for this digest were wrong: re-hash our copies
   * (at most once per digest per RECHECK_EVERY_MS, so reports cannot make us
   * read big files over and over).
   */
  private async onReport (peer: Peer, blake2b: Buffer): Promise<void> {
    const hex = toHex(blake2b)
    const last = this.rechecked.get(hex) ?? 0
    if (!this.store.get(hex) || Date.now() - last < RECHECK_EVERY_MS) return
    this.rechecked.set(hex, Date.now())
    // Piece hashes computed before may describe bytes that since changed.
    for (const key of this.pieceHashes.keys()) if (key.startsWith(hex)) this.pieceHashes.delete(key)
    const changed = await this.store.recheck(hex)
    log('%s reported bad bytes for %s: %d copies had changed', peer.label, hex.slice(0, 16), changed)
  }

  /**
   * The Manifest entry to fetch a name by: the only one with a BLAKE2B, or,
   * when repos disagree, the only one some box holds. Undefined when no
   * Manifest names it (then peers' names are all there is).
   */
  private manifestPin (name: string): ManifestEntry & { blake2b: string } | undefined {
    const entries = (this.manifest?.get(name) ?? []).filter((e): e is ManifestEntry & { blake2b: string } => e.blake2b !== null)
    if (entries.length <= 1) return entries[0]
    const held = entries.filter((e) => {
      const w = this.where(e.blake2b)
      return w.local.length + w.remote.length > 0
    })
    if (held.length > 1) throw AgentError.AMBIGUOUS(name, held.map((e) => e.blake2b))
    return held[0] ?? entries[0]
  }

  /** The Manifest entries of the file's name when the file matches none of them; null when it matches one, or none exist. */
  private manifestConflict (file: FileEntry): ManifestEntry[] | null {
    const entries = this.manifest?.get(file.name) ?? []
    if (entries.length === 0) return null
    const info = fileInfo(file)
    return entries.some((e) => matchesManifest(e, info)) ? null : entries
  }

  /** Announces the difference between what was advertised (`before`) and what the Manifests allow now. */
  private readvertise (before: ReadonlySet<LocalFile>): void {
    const added: LocalFile[] = []
    const removed: Buffer[] = []
    for (const f of this.store.entries()) {
      const now = this.manifestConflict(f) === null
      if (now && !before.has(f)) added.push(f)
      if (!now && before.has(f)) removed.push(f.blake2b)
    }
    if (added.length + removed.length === 0) return
    log('after the Manifest reload: advertising %d more files, withdrawing %d', added.length, removed.length)
    this.swarm?.announce(added, removed)
  }

  /** False for a file whose name a Manifest lists with other content: it must not pass for that entry. */
  private agreesWithManifest (file: LocalFile): boolean {
    const ok = this.manifestConflict(file) === null
    if (!ok) log('not advertising %s: its hashes disagree with the Manifest entry of that name', file.path)
    return ok
  }

  private requireSwarm (): DistSwarm {
    if (!this.swarm) throw AgentError.CONFIG('agent not started')
    return this.swarm
  }

  /** Stops serving and leaves the network. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.gcTimer) clearInterval(this.gcTimer)
    const control = this.control
    if (control) {
      await new Promise<void>((resolve) => control.close(() => resolve()))
      await rm(this.config.control, { force: true })
    }
    if (this.metricsServer) await stopMetricsServer(this.metricsServer)
    this.manifestWatcher?.stop()
    await this.gcQueue
    await this.swarm?.destroy()
    await this.store.stop()
  }
}
