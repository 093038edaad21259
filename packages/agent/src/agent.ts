import { EventEmitter } from 'node:events'
import { rm } from 'node:fs/promises'
import type { Server } from 'node:net'
import { dirname, resolve } from 'node:path'
import createDebug from 'debug'
import { isHexDigest, isValidName, toHex, type FileEntry } from '@distswarm/protocol'
import { ManifestIndex, Store, StoreError, watchRepos, type Download, type LocalFile, type ManifestEntry, type ManifestWatcher } from '@distswarm/store'
import { DistSwarm, sourcesOf, type LocalSource, type Peer, type PieceSource } from '@distswarm/swarm'
import type {
  FetchParams, FetchResult, FileInfo, LsParams, LsResult, PeerInfo, StatusResult, TransferInfo, UpstreamParams, VerifyParams, VerifyResult, WhereResult
} from './api.js'
import { findRepos, type AgentConfig } from './config.js'
import { startControlServer } from './control.js'
import { AgentError } from './errors.js'
import { loadOrCreateIdentity } from './identity.js'

const log = createDebug('distswarm:agent')

const RECHECK_EVERY_MS = 10 * 60_000
/** Download rounds of one fetch at most: each after a failed whole-file check goes without the peers it found wrong. */
const MAX_ROUNDS = 4

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
  /** What peers see: the store, less files that contradict the Manifest entry of their name. */
  private readonly advertised: LocalSource = {
    entries: () => [...this.store.entries()].filter((f) => this.agreesWithManifest(f)),
    get: (d) => {
      const f = this.store.get(d)
      return f && this.agreesWithManifest(f) ? f : undefined
    },
    hashPieces: async (d, offset, length, pieceSize) =>
      this.advertised.get(d) ? await this.store.hashPieces(d, { offset, length, pieceSize }) : undefined
  }

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
        this.manifest = index
        log('Manifest index reloaded: %d distfiles', index.size)
      })
    }
    await this.store.open()
    log('indexed %d files', this.store.size)
    const swarm = this.swarm = new DistSwarm({
      networkKey: this.config.networkKey,
      keyPair,
      bootstrap: this.config.bootstrap,
      host: this.config.host,
      port: this.config.port,
      dataPort: this.config.dataPort,
      staticPeers: this.config.staticPeers,
      name: this.config.name,
      seeder: this.config.seed,
      source: this.advertised
    })
    const info = (p: Peer): PeerInfo =>
      peerInfo(p, swarm.faultsOf(p.publicKeyHex), swarm.pathTo(p.publicKeyHex), swarm.traffic(p.publicKeyHex), swarm.lastSeen(p.publicKeyHex))
    swarm.on('peer-ready', (p) => this.emit('peer-ready', info(p)))
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
      ls: async (params) => this.ls(params),
      upstream: async (params) => this.upstream(params)
    })
    await swarm.listen()
  }

  status (): StatusResult {
    const swarm = this.requireSwarm()
    let bytes = 0
    for (const f of this.store.entries()) bytes += f.size
    const dht = swarm.address()
    return {
      name: this.config.name,
      seed: this.config.seed,
      publicKey: toHex(swarm.publicKey),
      network: toHex(swarm.topic).slice(0, 16),
      dhtAddress: dht ? `${dht.host}:${dht.port}` : null,
      dataPort: swarm.dataPort,
      control: this.config.control,
      cacheDir: this.config.cacheDir,
      distdirs: this.config.distdirs,
      files: this.store.size,
      bytes,
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
    if (local) return { ...local, source: 'local', durationMs: Date.now() - started, resumedFrom: 0 }

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
      swarm.penalize(key, why)
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
        let pieces: PieceSource[] = []
        for (let round = 1; ; round++) {
          pieces = pieces.filter((p) => p.offset < download.written)
          try {
            pieces.push(...await swarm.download(entry, download, { exclude: excluded }))
          } catch (err) {
            // The sources failed, not the bytes: keep them for the next attempt to resume.
            // (Wrong sizes and full disks were discarded by the store already.)
            await download.suspend()
            kept = true
            throw err
          }
          const problem = await download.verify()
          if (problem === null) break
          if (round === MAX_ROUNDS) throw StoreError.VERIFY_FAILED(want.name, problem)
          const next = await this.repair(download, entry, pieces, problem)
          // The last round went without the suspect and still failed: it gets its turn back.
          if (suspect !== null) excluded.delete(suspect)
          for (const key of next.liars) blame(key, problem)
          suspect = next.suspect
          if (suspect !== null) excluded.add(suspect)
          const others = swarm.find({ blake2b: target.blake2b })[0]?.holders.filter((p) => !excluded.has(p.publicKeyHex)) ?? []
          if (others.length === 0) throw StoreError.VERIFY_FAILED(want.name, problem)
          log('%s: %s; fetching again from byte %d, from %d peer(s)', want.name, problem, download.written, others.length)
        }
        // The round that went without the suspect verified: it was wrong.
        if (suspect !== null) blame(suspect, 'bytes that disagreed with the verified file')
        const file = await this.store.commit(download)
        const result: FetchResult = {
          ...fileInfo(file), path: file.path, source: 'swarm', durationMs: Date.now() - want.started, resumedFrom: download.resumedFrom
        }
        this.counters.completed++
        this.counters.bytesFetched += file.size
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
   * holders' piece hashes and cuts the partial file back to the first of
   * them. When no piece stands out, the file starts over and every source
   * is a liar (but for bytes an earlier run left, whose sources are
   * unknown: then nobody is blamed the first time).
   */
  private async repair (download: Download, entry: FileEntry, pieces: readonly PieceSource[], problem: string): Promise<{ liars: string[], suspect: string | null }> {
    const swarm = this.requireSwarm()
    const verdict = await swarm.diagnose(entry, pieces, (range) => this.store.hashWritten(download, range))
    const firstBad = verdict?.bad[0]
    if (verdict && firstBad !== undefined) {
      await download.truncate(pieces[firstBad]!.offset)
      return verdict
    }
    const resumed = (pieces[0]?.offset ?? download.written) > 0
    await download.truncate(0)
    log('%s: %s, and no piece stands out%s', entry.name, problem, resumed ? '; starting over, the bytes resumed from may be at fault' : '')
    return { liars: resumed ? [] : sourcesOf(pieces), suspect: null }
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
   * A peer says our bytes for this digest were wrong: re-hash our copies
   * (at most once per digest per RECHECK_EVERY_MS, so reports cannot make us
   * read big files over and over).
   */
  private async onReport (peer: Peer, blake2b: Buffer): Promise<void> {
    const hex = toHex(blake2b)
    const last = this.rechecked.get(hex) ?? 0
    if (!this.store.get(hex) || Date.now() - last < RECHECK_EVERY_MS) return
    this.rechecked.set(hex, Date.now())
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
    const control = this.control
    if (control) {
      await new Promise<void>((resolve) => control.close(() => resolve()))
      await rm(this.config.control, { force: true })
    }
    this.manifestWatcher?.close()
    await this.swarm?.destroy()
    await this.store.close()
  }
}
