/**
 * The control API's methods, over the parts a started agent wires together:
 * what `distswarm status`, `where`, `ls`, `fetch`, `verify`, `gc` and
 * portage-fetch's `upstream` report are answered with.
 */
import { dirname, resolve } from 'node:path'
import { isHexDigest, isValidName, toHex, type Logger } from '@distswarm/protocol'
import { byName, type LocalFile, type Store } from '@distswarm/store'
import { SwarmError, type DistSwarm, type Peer } from '@distswarm/swarm'
import type { Binhost } from './binhost.js'
import type {
  BinpkgsParams, BuildsResult, FetchParams, FetchResult, FileInfo, GcParams, GcResult, LsParams, LsResult, PeerInfo, StatusResult, TransferInfo, TransferSource,
  UpstreamParams, VerifyParams, VerifyResult, WhereResult
} from './api.js'
import type { AgentConfig } from './config.js'
import type { Handlers } from './control.js'
import { AgentError } from './errors.js'
import type { Fetcher } from './fetcher.js'
import { fileInfo, peerInfo } from './files.js'
import { matchesManifest, type ManifestPolicy, type PinnedEntry } from './manifest-policy.js'
import type { Metrics } from './metrics.js'
import type { Quota } from './quota.js'

/** The parts of a started agent the handlers answer from. */
export interface AgentParts {
  config: AgentConfig
  store: Store
  swarm: DistSwarm
  fetcher: Fetcher
  policy: ManifestPolicy
  quota: Quota
  binhost: Binhost
  metrics: Metrics
  log: Logger
  startedAt: number
  metricsAddress: () => string | null
  /** The HTTP gateway's address and URL, null when it is off. */
  http: () => { address: string | null, url: string | null } | null
  /** Outcomes that no download reports: for the status page's recent fetches. */
  notify?: {
    lookup: (e: { name: string, outcome: 'local' | 'miss', bytes?: number }) => void
    upstream: (e: { name: string, bytes: number }) => void
  }
}

/** Files indexed and their bytes. */
export function inventory (store: Store): { files: number, bytes: number } {
  let bytes = 0
  for (const f of store.entries()) bytes += f.size
  return { files: store.size, bytes }
}

/** A download under way with whom it may take bytes from: whole-file holders, then partial holders (swarming), by name. */
function transferWithSources (swarm: DistSwarm, t: TransferInfo): TransferInfo {
  const whole: TransferSource[] = (swarm.find({ blake2b: t.blake2b })[0]?.holders ?? [])
    .map((p) => ({ name: p.name, publicKey: p.publicKeyHex, holds: 'whole' }))
  const partial = swarm.partialHolders(t.blake2b)
  const pieces: TransferSource[] = partial.map(({ peer, name, pieces }) => ({ name, publicKey: peer, holds: 'pieces', pieces }))
  return { ...t, partialHolders: partial.length, sources: [...whole, ...pieces] }
}

/** The one connected peer `q` names: its exact name, else a key prefix, else a name prefix, whichever matches first. */
export function findPeer (peers: readonly Peer[], q: string): Peer {
  const tries = [
    (p: Peer) => p.name === q,
    (p: Peer) => /^[0-9a-f]+$/i.test(q) && p.publicKeyHex.startsWith(q.toLowerCase()),
    (p: Peer) => q !== '' && p.name.startsWith(q)
  ]
  const matches = tries.map((t) => peers.filter(t)).find((m) => m.length > 0) ?? []
  if (matches.length > 1) throw AgentError.AMBIGUOUS_PEER(q, matches.map((p) => p.publicKeyHex))
  const peer = matches[0]
  if (!peer) throw SwarmError.NOT_FOUND(`the key prefix or name ${JSON.stringify(q.slice(0, 128))}`)
  return peer
}

export class ControlHandlers {
  private readonly p: AgentParts
  /** What portage-fetch reported downloading upstream through its fallback. */
  private readonly upstreamCounters = { files: 0, bytes: 0 }

  constructor (parts: AgentParts) {
    this.p = parts
  }

  /** The control server's table. */
  handlers (): Handlers {
    return {
      status: async () => this.status(),
      peers: async () => this.peers(),
      where: async (params) => this.where(params.query),
      fetch: (params) => this.fetch(params),
      verify: (params) => this.verify(params),
      gc: (params) => this.gc(params),
      ls: async (params) => this.ls(params),
      upstream: async (params) => this.upstream(params),
      binpkgs: async (params) => this.binpkgs(params)
    }
  }

  peerInfo (peer: Peer): PeerInfo {
    const { swarm, fetcher } = this.p
    const key = peer.publicKeyHex
    return peerInfo(peer, fetcher.faultsOf(key), swarm.pathTo(key), swarm.traffic(key), swarm.lastSeen(key))
  }

  peers (): PeerInfo[] {
    return this.p.swarm.readyPeers().map((peer) => this.peerInfo(peer))
  }

  /** The Manifest entry a name is fetched by (its digest and size, whatever peers call theirs); undefined for a digest or an unknown name. */
  private pinned (query: string): PinnedEntry | undefined {
    if (isHexDigest(query.toLowerCase())) return undefined
    const held = (blake2b: string): boolean => {
      const w = this.where(blake2b)
      return w.local.length + w.remote.length > 0
    }
    return this.p.policy.pin(query, held)
  }

  /** What fetch() looks a query up by: a name the Manifests pin becomes their BLAKE2B; anything else stays. Throws ERR_AMBIGUOUS. */
  pinnedQuery (query: string): string {
    return this.pinned(query)?.blake2b ?? query
  }

  status (): StatusResult {
    const { config, store, swarm, fetcher } = this.p
    const dht = swarm.address()
    return {
      name: config.name,
      seed: config.seed,
      publicKey: toHex(swarm.publicKey),
      network: toHex(swarm.topic).slice(0, 16),
      dhtAddress: dht ? `${dht.host}:${dht.port}` : null,
      dataPort: swarm.dataPort,
      control: config.control,
      metricsAddress: this.p.metricsAddress(),
      httpAddress: this.p.http()?.address ?? null,
      url: this.p.http()?.url ?? null,
      cacheDir: config.cacheDir,
      distdirs: config.distdirs,
      files: store.size,
      bytes: inventory(store).bytes,
      cache: { bytes: store.cacheBytes, maxBytes: config.cacheMaxBytes },
      peers: swarm.readyPeers().length,
      fetches: fetcher.stats(),
      transfers: fetcher.underWay().map((t) => transferWithSources(swarm, t)),
      traffic: {
        servedToPeers: swarm.servedBytes(),
        relayedToPeers: swarm.relayedBytes(),
        fetchedFromPeers: fetcher.stats().bytesFetched,
        fetchedUpstream: this.upstreamCounters.bytes,
        upstreamFiles: this.upstreamCounters.files
      },
      manifest: this.p.policy.summary,
      builds: this.p.binhost.counts(),
      problems: swarm.problems().map((p) => ({ ...p, at: new Date(p.at).toISOString() })),
      uptimeMs: Date.now() - this.p.startedAt
    }
  }

  where (query: string): WhereResult {
    const { store, swarm } = this.p
    const byDigest = isHexDigest(query.toLowerCase())
    const key = byDigest ? { blake2b: query.toLowerCase() } : { name: query }
    const local: LocalFile[] = byDigest ? [store.get(key.blake2b!)].filter((f) => f !== undefined) : store.findByName(query)
    return {
      query,
      local: local.map((f) => ({ ...fileInfo(f), path: f.path })),
      remote: swarm.find(key).map((r) => ({
        ...fileInfo(r.entry),
        holders: r.holders.map((p) => ({ name: p.name, publicKey: p.publicKeyHex }))
      }))
    }
  }

  /** This box's inventory, or the files a peer (its name, a key prefix or a name prefix) advertises. */
  ls (params: LsParams): LsResult {
    if (params.peer === undefined) {
      const cacheDir = resolve(this.p.config.cacheDir)
      const files = [...this.p.store.entries()].map((f) => ({
        ...fileInfo(f), where: dirname(f.path) === cacheDir ? 'cache' as const : 'distdir' as const, path: f.path
      }))
      return { peer: null, files: files.sort(byName) }
    }
    const peer = findPeer(this.p.swarm.readyPeers(), params.peer)
    return {
      peer: { name: peer.name, publicKey: peer.publicKeyHex },
      files: [...peer.files.values()].map((e) => ({ ...fileInfo(e), where: 'peer' as const, path: null })).sort(byName)
    }
  }

  /** The builds across the network (`distswarm binpkgs [ATOM]`). */
  binpkgs (params: BinpkgsParams): BuildsResult {
    if (params.atom !== undefined && (params.atom.length > 256 || /[\s\x00-\x1f]/.test(params.atom))) throw AgentError.BAD_REQUEST('atom must be one word of at most 256 characters')
    return this.p.binhost.builds(params.atom)
  }

  /** portage-fetch says its fallback downloaded a file upstream: counted for status, nothing else. */
  upstream (params: UpstreamParams): { fetchedUpstream: number } {
    if (!isValidName(params.name)) throw AgentError.BAD_REQUEST(`invalid file name ${JSON.stringify(params.name.slice(0, 300))}`)
    this.upstreamCounters.files++
    this.upstreamCounters.bytes += params.bytes
    this.p.log.debug('upstream.fetched', { name: params.name, bytes: params.bytes })
    this.p.notify?.upstream({ name: params.name, bytes: params.bytes })
    return { fetchedUpstream: this.upstreamCounters.bytes }
  }

  /**
   * Makes the file named or addressed by `query` present on this box: at
   * once when it already is, else fetched from peers into the cache dir,
   * verified and published (the Fetcher). Concurrent calls for one file share one download.
   * A seed refuses every fetch (ERR_SEED_ONLY), so it never writes a byte it was not given.
   */
  async fetch (params: FetchParams): Promise<FetchResult> {
    const { metrics } = this.p
    try {
      const result = await this.fetchFile(params)
      metrics.fetches[result.source]++
      return result
    } catch (err) {
      metrics.fetches[(err as { code?: unknown }).code === 'ERR_NOT_FOUND' ? 'not_found' : 'failed']++
      throw err
    }
  }

  /** fetch(), less counting its result. */
  private async fetchFile (params: FetchParams): Promise<FetchResult> {
    if (this.p.config.seed) throw AgentError.SEED_ONLY()
    const started = Date.now()
    const query = typeof params.query === 'string' ? params.query : ''
    if (!query) throw AgentError.BAD_REQUEST('fetch needs a file name or BLAKE2B digest')
    const sha512 = typeof params.sha512 === 'string' && params.sha512 ? params.sha512.toLowerCase() : undefined
    if (sha512 !== undefined && !isHexDigest(sha512)) throw AgentError.BAD_REQUEST('sha512 must be 128 hex characters')
    const name = typeof params.name === 'string' && params.name ? params.name : undefined
    if (name !== undefined && !isValidName(name)) throw AgentError.BAD_REQUEST(`invalid file name ${JSON.stringify(name.slice(0, 300))}`)

    const pinned = this.pinned(query)
    const found = this.where(pinned?.blake2b ?? query)
    const wanted = (f: FileInfo): boolean =>
      (sha512 === undefined || f.sha512 === '' || f.sha512 === sha512) && (pinned === undefined || matchesManifest(pinned, f))
    const local = found.local.find(wanted)
    if (local) {
      // portage-fetch links or copies it next: the cache keeps what Portage uses.
      this.p.store.touch(local.blake2b)
      this.p.notify?.lookup({ name: local.name, outcome: 'local', bytes: local.size })
      return { ...local, source: 'local', durationMs: Date.now() - started, resumedFrom: 0 }
    }

    const candidates = found.remote.filter(wanted)
    if (candidates.length === 0) {
      if (found.remote.length > 0) throw AgentError.DIGEST_MISMATCH(query, 'SHA512')
      this.p.notify?.lookup({ name: name ?? query, outcome: 'miss' })
      throw SwarmError.NOT_FOUND(query)
    }
    if (candidates.length > 1) throw AgentError.AMBIGUOUS(query, candidates.map((c) => c.blake2b))
    const target = candidates[0]!
    // A BLAKE2B the caller or a Manifest named is the check; else a SHA512 it named is the only anchor, so it is checked too.
    const anchored = pinned !== undefined || isHexDigest(query.toLowerCase())
    return await this.p.fetcher.fetch(target, { sha512: anchored ? undefined : sha512, name: name ?? (pinned ? query : target.name), started })
  }

  /**
   * Re-hashes every file of the cache dir against the index and the
   * Manifest entry of its name; with `remove`, deletes the bad ones (which
   * withdraws them from peers). DISTDIR files are Portage's: never looked at here.
   */
  verify (params: VerifyParams): Promise<VerifyResult> {
    return this.p.store.verify({
      remove: params.remove === true,
      judge: (file) => {
        const entries = this.p.policy.conflict(file)
        if (entries === null) return null
        return { expected: entries.find((e) => e.blake2b !== null)?.blake2b ?? null, detail: 'its hashes contradict the Manifest entry of its name' }
      }
    })
  }

  /** Applies the cache quota now (see planEviction for the order), or with `dryRun` only says what it would remove. */
  gc (params: GcParams): Promise<GcResult> {
    return this.p.quota.run(params.dryRun === true)
  }
}
