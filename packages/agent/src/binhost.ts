/**
 * Binary packages: this box's builds (its PKGDIRs, signed with its key), the
 * builds it fetched from peers (the BuildCache), and the builds peers
 * advertise, merged into the one Packages index the gateway serves at
 * /binpkgs/ (only trusted builders, this box's CHOST and group; see
 * BinhostIndex). A GET of a PATH the box lacks is fetched from the peers
 * holding it, verified (BLAKE2B, SIZE, MD5, SHA1) and kept in the build cache.
 */
import { realpath } from 'node:fs/promises'
import { basename } from 'node:path'
import { BinhostIndex, parseCpv, PkgdirIndex, type LocalBuild, type MergedIndex, type OfferedBuild, type Trust } from '@distswarm/binpkg'
import { toHex, type FileEntry, type Logger } from '@distswarm/protocol'
import type { LocalFile, PieceRange, Store } from '@distswarm/store'
import type { BuildAd, DistSwarm, KeyPair, Peer } from '@distswarm/swarm'
import type { BinhostFile, BinhostSource, BuildInfo, BuildsResult } from './api.js'
import { BuildCache, cacheName } from './buildcache.js'
import type { AgentConfig } from './config.js'
import { AgentError } from './errors.js'
import { Fetcher, type FetchSwarm } from './fetcher.js'
import type { Penalties } from './penalties.js'
import { askPortage, defaultPkgdirs, type PortageView } from './portage.js'
import { Quota } from './quota.js'

/** What the binhost needs of the swarm for builds. */
export type BuildNetwork = Pick<DistSwarm, 'setBuilds' | 'builds' | 'buildHolders' | 'on' | 'download' | 'report' | 'disconnect' | 'rangeSize' | 'pieceHashes'>

export interface BinhostInit {
  config: AgentConfig
  keyPair: KeyPair
  /** The agent's store: hashes PKGDIR files in its pool and keeps their digests across restarts. */
  store: Pick<Store, 'hashBuild' | 'retainBuildHashes' | 'piecesOf'>
  /** The swarm's build API; null: builds stay on this box (nothing advertised, nothing fetched). */
  network: BuildNetwork | null
  /** Signs an advertisement of this box's build with its key; null: this box's builds are not advertised. */
  sign: ((ad: Omit<BuildAd, 'builder' | 'signature'>, keyPair: KeyPair) => BuildAd) | null
  /** Checks a builder's signature (advertisements read back from the state dir). */
  verify?: (ad: BuildAd) => boolean
  /** The agent's book of peer faults: a peer that sends a wrong build is blamed as for distfiles. */
  penalties: Penalties
  /** A connected peer's name by its hex key. */
  peerName: (key: string) => string | null
  logger: Logger
}

/**
 * Peers' new builds reach the merged index at the first look after
 * MERGE_GAP_FACTOR times the last merge's time (a few ms for a small
 * network; for 50 000 builds, merged in ~0.3-1 s, a few seconds, at most
 * MAX_MERGE_GAP_MS): merging is then at most a tenth of a core while builds
 * stream in. This box's own changes (its PKGDIRs, its cache) count at once.
 */
const MERGE_GAP_FACTOR = 10
const MAX_MERGE_GAP_MS = 5_000

/** What holders a row names for this box. */
export const THIS_BOX = 'this box'

/** A build known to this box, one per BLAKE2B. */
interface Known {
  offer: OfferedBuild
  /** where this box holds it, null when only peers do */
  file: string | null
  /** the advertisement it travels with (null for this box's own until signed) */
  ad: BuildAd | null
  holders: Peer[]
}

/**
 * The merged index and what status counts of it. The builds known (collect())
 * are not kept with it: 50 000 of them are ~20 MiB the few callers that need
 * them (a fetch, the builds listing) can make again.
 */
interface Current {
  merged: MergedIndex | null
  unavailable: string | null
  /** Builds this box holds, and builds its peers advertise. */
  local: number
  network: number
}

/** Does `cpv` match `atom`: `cat/pkg`, `pkg`, `cat/pkg-ver` or `pkg-ver`, operators, slot and repo ignored? */
export function matchesAtom (cpv: string, atom: string): boolean {
  const a = atom.trim().replace(/^[<>=~!]+/, '').replace(/::.*$/, '').replace(/:.*$/, '').replace(/\*$/, '')
  const p = parseCpv(cpv)
  if (p === null || a === '') return a === ''
  if (a.includes('/')) return a === cpv || a === `${p.category}/${p.pn}`
  return a === p.pn || a === p.pf
}

export class Binhost {
  private readonly init: BinhostInit
  private readonly config: AgentConfig
  private readonly log: Logger
  private readonly ownKey: string
  /** Builders whose builds the binhost offers (binpkgTrust, and this box). */
  private readonly trusted: Trust
  readonly cache: BuildCache
  private readonly pkgdirs: PkgdirIndex[] = []
  /** Downloads of builds (null without a network): its events count in the agent's metrics as the distfile Fetcher's do. */
  readonly fetcher: Fetcher | null
  private readonly quota: Quota
  private portage: PortageView | null = null
  /** This box's builds by BLAKE2B (from every PKGDIR; the first wins). */
  private own = new Map<string, LocalBuild>()
  /** Signed advertisements of this box's builds, with what they were signed over. */
  private readonly signed = new Map<string, { key: string, ad: BuildAd }>()
  /** Advertisements of builds being fetched: what the download is checked against and kept with. */
  private readonly fetching = new Map<string, BuildAd>()
  private index: { key: string, index: BinhostIndex } | null = null
  private current: Current | null = null
  /** Peers' builds changed since `current` was merged: it is merged again once MERGE_GAP_FACTOR times its merge time passed. */
  private stale = false
  private mergedAt = 0
  private mergeMs = 0
  private started = false

  constructor (init: BinhostInit) {
    this.init = init
    this.config = init.config
    this.log = init.logger
    this.ownKey = toHex(init.keyPair.publicKey)
    const trust = init.config.binpkgTrust ?? []
    this.trusted = trust === 'all-members' ? trust : new Set([...trust, this.ownKey])
    this.cache = new BuildCache({ stateDir: init.config.stateDir, verify: init.verify, logger: init.logger.child('cache') })
    const network = init.network
    this.fetcher = network === null
      ? null
      : new Fetcher({
        store: this.cache.writer((hex) => this.fetching.get(hex)),
        swarm: this.fetchSwarm(network),
        penalties: init.penalties,
        logger: init.logger.child('fetch'),
        afterPublish: async () => { await this.quota.enforce() }
      })
    this.quota = new Quota({
      store: this.cache.store,
      cacheDir: this.cache.dir,
      maxBytes: init.config.cacheMaxBytes,
      // From the merged view (kept until the builds change): a quota run asks for every cached build.
      holders: (hex) => this.holders(hex).length,
      // No Manifest names builds: none is stale by name.
      referenced: () => true,
      pinned: (hex) => this.fetcher?.isFetching(hex) ?? false,
      logger: init.logger.child('quota')
    })
  }

  /** The swarm as the Fetcher sees it, finding builds instead of distfiles. */
  private fetchSwarm (network: BuildNetwork): FetchSwarm {
    return {
      find: ({ blake2b }) => {
        const ad = blake2b === undefined ? undefined : this.fetching.get(blake2b)
        return ad ? [{ entry: entryOf(ad), holders: this.holders(blake2b!) }] : []
      },
      download: (entry, sink, opts) => network.download(entry, sink, opts),
      report: (key, blake2b) => network.report(key, blake2b),
      disconnect: (key, reason) => network.disconnect(key, reason),
      get rangeSize () { return network.rangeSize },
      pieceHashes: (entry, range) => network.pieceHashes(entry, range)
    }
  }

  /** The peers advertising this build (whoever built it). */
  private holders (hex: string): Peer[] {
    return this.init.network?.buildHolders(hex) ?? []
  }

  /** Indexes the PKGDIRs, opens the build cache and advertises. Idempotent; a failed start stops what it started. */
  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    try {
      await this.bringUp()
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  private async bringUp (): Promise<void> {
    const { config } = this
    if (config.pkgdirs == null) this.portage = await askPortage()
    const dirs = config.pkgdirs ?? await defaultPkgdirs(this.portage!)
    for (const pkgdir of dirs) await this.addPkgdir(pkgdir)
    this.collectOwn()
    if (config.chost == null && this.headerChost() === null) this.portage ??= await askPortage()
    await this.cache.start()
    this.cache.on('change', () => this.changed(true))
    this.init.network?.on('builds', () => this.changed(false))
    this.fetcher?.start()
    this.quota.start()
    this.changed(true)
    const why = this.view().unavailable
    // A box that asked for binary packages (a PKGDIR, trusted builders) must hear why it serves none; others need not.
    const asked = this.pkgdirs.length > 0 || (config.binpkgTrust ?? []).length > 0
    if (why !== null) this.log[asked ? 'warn' : 'info']('binhost.unavailable', { why })
    this.log.info('binhost.started', { pkgdirs: this.pkgdirs.length, own: this.own.size, cached: this.cache.size, chost: this.chost() ?? undefined })
  }

  private async addPkgdir (pkgdir: string): Promise<void> {
    const idx = new PkgdirIndex({ pkgdir, logger: this.log.child('pkgdir'), hash: (file) => this.init.store.hashBuild(file) })
    try {
      await idx.start()
    } catch (err) {
      // A PKGDIR that cannot be read is a box's misconfiguration, not a reason to stop serving distfiles.
      this.log.warn('pkgdir.unusable', { pkgdir, why: (err as Error).message })
      return
    }
    const root = await realpath(pkgdir).catch(() => pkgdir)
    idx.on('change', (builds) => {
      this.init.store.retainBuildHashes(new Set(builds.map((b) => b.file)), root)
      this.collectOwn()
      this.changed(true)
    })
    this.pkgdirs.push(idx)
  }

  async stop (): Promise<void> {
    for (const idx of this.pkgdirs) await idx.stop()
    await this.quota.stop()
    this.fetcher?.stop()
    await this.cache.stop()
  }

  private collectOwn (): void {
    const own = new Map<string, LocalBuild>()
    for (const idx of this.pkgdirs) for (const b of idx.builds) if (!own.has(b.blake2b)) own.set(b.blake2b, b)
    this.own = own
  }

  /** The CHOST in the first PKGDIR's Packages header that has one. */
  private headerChost (): string | null {
    for (const idx of this.pkgdirs) if (idx.indexHeader.CHOST) return idx.indexHeader.CHOST
    return null
  }

  /** This box's CHOST: --chost, else its Packages, else Portage's; null when none is known. */
  chost (): string | null {
    return this.config.chost ?? this.headerChost() ?? this.portage?.chost ?? null
  }

  group (): string | null {
    return this.config.binpkgGroup ?? this.chost()
  }

  isTrusted (builder: string): boolean {
    return this.trusted === 'all-members' || this.trusted.has(builder)
  }

  /** One file, two builders (a reproducible build): whether the ad of `other` is taken over that of `held` (this box trusts it, not `held`). */
  private trustedOver (held: string, other: string): boolean {
    return !this.isTrusted(held) && this.isTrusted(other)
  }

  /** Something changed: the index is merged again when next asked; `ours` also re-advertises. */
  private changed (ours: boolean): void {
    if (!ours) {
      // A peer's builds arrive in batches, a 'builds' event each: merging 50 000 builds again at every one
      // (at each status call and GET between them) is CPU, and garbage the heap keeps as RSS. See view().
      this.stale = true
      return
    }
    this.current = null
    this.advertise()
  }

  /** This box's builds, signed, and the builds it keeps for others, as their builders signed them. */
  private advertise (): void {
    const { network, sign, keyPair } = this.init
    if (network === null) return
    const ads: BuildAd[] = []
    if (sign !== null) {
      for (const [hex, b] of this.own) {
        const group = this.ownGroup(b)
        const fields = this.ownFields(b)
        const key = `${group}\n${JSON.stringify(fields)}`
        let s = this.signed.get(hex)
        if (s?.key !== key) {
          try {
            s = { key, ad: sign({ blake2b: Buffer.from(hex, 'hex'), size: b.build.size, group, fields }, keyPair) }
          } catch (err) {
            // Past a bound of the wire (a huge stanza): offered on this box's binhost, not to peers.
            this.log.warn('build.not-advertised', { cpv: b.build.cpv, why: (err as Error).message })
            this.signed.delete(hex)
            continue
          }
          this.signed.set(hex, s)
        }
        ads.push(s.ad)
      }
      for (const hex of this.signed.keys()) if (!this.own.has(hex)) this.signed.delete(hex)
    }
    for (const c of this.cache.entries()) if (!this.own.has(toHex(c.ad.blake2b))) ads.push(c.ad)
    network.setBuilds(ads)
  }

  /** A build's stanza as advertised: without a CHOST in its stanza or its Packages header, it is this box's (as Portage takes it). */
  private ownFields (b: LocalBuild): Record<string, string> {
    const chost = this.chost()
    return b.fields.CHOST || chost === null ? b.fields : { ...b.fields, CHOST: chost }
  }

  /** The group this box's build is advertised in: binpkg-group, else this box's CHOST, else the build's own. */
  private ownGroup (b: LocalBuild): string {
    return this.group() ?? b.fields.CHOST ?? ''
  }

  /** Every build known, one per BLAKE2B: this box's, then its cache's, then its peers'. */
  private collect (): Map<string, Known> {
    const known = new Map<string, Known>()
    for (const [hex, b] of this.own) {
      known.set(hex, { offer: { blake2b: hex, builder: this.ownKey, group: this.ownGroup(b), fields: this.ownFields(b) }, file: b.file, ad: this.signed.get(hex)?.ad ?? null, holders: [] })
    }
    for (const c of this.cache.entries()) {
      const hex = toHex(c.ad.blake2b)
      if (!known.has(hex)) known.set(hex, { offer: offerOf(c.ad), file: c.file.path, ad: c.ad, holders: [] })
    }
    // One string per builder key, not one per build (10 builders x 5 000 builds: 50 000 copies of 10 keys).
    const builders = new Map<string, string>()
    for (const row of this.init.network?.builds() ?? []) {
      const hex = toHex(row.ad.blake2b)
      const k = known.get(hex)
      if (!k) {
        const builder = toHex(row.ad.builder)
        const one = builders.get(builder) ?? builder
        builders.set(one, one)
        known.set(hex, { offer: offerOf(row.ad, hex, one), file: null, ad: row.ad, holders: [...row.holders] })
        continue
      }
      k.holders = [...new Set([...k.holders, ...row.holders])]
      if (k.file === null && this.trustedOver(k.offer.builder, toHex(row.ad.builder))) {
        k.offer = offerOf(row.ad)
        k.ad = row.ad
      }
    }
    return known
  }

  /**
   * The merged index as it is now, merged again when something changed
   * since; from `collected` when the caller collected the builds already (and when).
   */
  private view (collected?: { known: Map<string, Known>, at: number }): Current {
    if (this.current !== null && this.stale && Date.now() - this.mergedAt >= Math.min(MAX_MERGE_GAP_MS, MERGE_GAP_FACTOR * this.mergeMs)) this.current = null
    if (this.current !== null) return this.current
    const started = collected?.at ?? performance.now()
    this.stale = false
    const known = collected?.known ?? this.collect()
    const chost = this.chost()
    const group = this.group()
    let unavailable: string | null = null
    let merged: MergedIndex | null = null
    if (chost === null || group === null) {
      unavailable = 'no CHOST known for this box: set chost (--chost), or give a pkgdir whose Packages header has one' +
        (this.portage?.problem ? ` (${this.portage.problem})` : '')
    } else {
      const trust = this.trusted
      const key = JSON.stringify([chost, group, trust === 'all-members' ? trust : [...trust].sort()])
      try {
        if (this.index?.key !== key) this.index = { key, index: new BinhostIndex({ chost, group, trust }) }
        merged = this.index.index.merge([...known.values()].map((k) => k.offer))
        for (const s of merged.skipped) this.log.debug('binhost.skipped', { cpv: s.cpv, builder: s.builder.slice(0, 12), why: s.reason })
      } catch (err) {
        unavailable = (err as Error).message
      }
    }
    let local = 0
    let network = 0
    for (const k of known.values()) {
      if (k.file !== null) local++
      if (k.holders.length > 0) network++
    }
    this.current = { merged, unavailable, local, network }
    this.mergeMs = performance.now() - started
    this.mergedAt = Date.now()
    return this.current
  }

  /** The gateway's view (see BinhostSource). */
  source (): BinhostSource {
    return {
      index: () => {
        const v = this.view()
        return v.merged === null ? { unavailable: v.unavailable ?? 'no index' } : { body: v.merged.body, timestamp: v.merged.timestamp }
      },
      local: (path) => this.local(path),
      fetch: (path) => this.fetch(path)
    }
  }

  local (path: string): BinhostFile | undefined {
    const m = this.view().merged?.builds.get(path)
    return m === undefined ? undefined : this.fileOf(m.blake2b, path)
  }

  private fileOf (hex: string, path: string): BinhostFile | undefined {
    const own = this.own.get(hex)
    const file = own?.file ?? this.cache.get(hex)?.file.path
    if (file === undefined) return undefined
    if (!own) this.cache.store.touch(hex)
    return { path: file, size: own?.build.size ?? this.cache.get(hex)!.file.size, name: basename(path), blake2b: hex }
  }

  async fetch (path: string): Promise<BinhostFile> {
    const v = this.view()
    const m = v.merged?.builds.get(path)
    if (m === undefined) throw AgentError.BUILD_NOT_FOUND(path, v.unavailable)
    const here = this.fileOf(m.blake2b, path)
    if (here) return here
    if (this.config.seed) throw AgentError.SEED_ONLY()
    const ad = this.networkAd(m.blake2b)
    if (this.fetcher === null || !ad) throw AgentError.BUILD_NOT_FOUND(path, 'no peer holds it')
    const name = cacheName(ad)
    this.fetching.set(m.blake2b, ad)
    try {
      await this.fetcher.fetch({ name, size: ad.size, blake2b: m.blake2b, sha512: '' }, { name, sha512: undefined, started: Date.now() })
    } finally {
      if (!this.fetcher.isFetching(m.blake2b)) this.fetching.delete(m.blake2b)
    }
    const got = this.fileOf(m.blake2b, path)
    if (!got) throw AgentError.BUILD_NOT_FOUND(path, 'it left the build cache at once (quota)')
    return got
  }

  /** The advertisement a peer's build is fetched by, among those naming this file: one of a trusted builder, as collect() takes. */
  private networkAd (hex: string): BuildAd | null {
    const want = Buffer.from(hex, 'hex')
    let ad: BuildAd | null = null
    for (const row of this.init.network?.builds() ?? []) {
      if (!row.ad.blake2b.equals(want)) continue
      if (ad === null || this.trustedOver(toHex(ad.builder), toHex(row.ad.builder))) ad = row.ad
    }
    return ad
  }

  /** A build file peers may ask for by BLAKE2B (the swarm serves it as it serves distfiles). */
  file (hex: string): LocalFile | undefined {
    const own = this.own.get(hex)
    if (own) return { name: basename(own.file), size: own.build.size, blake2b: Buffer.from(hex, 'hex'), sha512: Buffer.alloc(0), path: own.file }
    const c = this.cache.get(hex)
    if (c) this.cache.store.touch(hex)
    return c?.file
  }

  /** Piece hashes of a build file this box holds, for a peer finding out which of its sources lied. */
  async pieces (hex: string, range: PieceRange): Promise<Buffer[] | undefined> {
    const own = this.own.get(hex)
    if (own) return await this.init.store.piecesOf(own.file, range)
    return await this.cache.store.hashPieces(hex, range)
  }

  /** The builds across the network, each with where this box's binhost stands on it. */
  builds (atom?: string): BuildsResult {
    // Of the builds as they are now: a change the index has not taken yet (see MERGE_GAP_FACTOR) is merged first.
    if (this.stale) this.current = null
    const at = performance.now()
    const known = this.collect()
    const v = this.view({ known, at })
    const served = new Map<string, { path: string, buildId: number }>()
    for (const [path, m] of v.merged?.builds ?? []) served.set(m.blake2b, { path, buildId: m.buildId })
    const skipped = new Map<string, string>()
    for (const s of v.merged?.skipped ?? []) skipped.set(s.blake2b, s.reason)
    const rows: BuildInfo[] = []
    for (const [hex, k] of known) {
      const cpv = k.offer.fields.CPV ?? ''
      if (atom !== undefined && atom !== '' && !matchesAtom(cpv, atom)) continue
      const s = served.get(hex)
      const holders = k.holders.map((p) => p.name)
      rows.push({
        cpv,
        buildId: s?.buildId ?? (Number(k.offer.fields.BUILD_ID) || 0),
        path: s?.path ?? null,
        use: k.offer.fields.USE ?? '',
        size: Number(k.offer.fields.SIZE) || 0,
        blake2b: hex,
        builder: k.offer.builder,
        builderName: k.offer.builder === this.ownKey ? this.config.name : this.init.peerName(k.offer.builder),
        holders: k.file !== null ? [THIS_BOX, ...holders] : holders,
        trusted: this.isTrusted(k.offer.builder),
        skipped: s ? null : skipped.get(hex) ?? v.unavailable ?? 'a copy of a build the index offers under another path'
      })
    }
    rows.sort((a, b) => a.cpv < b.cpv ? -1 : a.cpv > b.cpv ? 1 : a.buildId - b.buildId)
    return { chost: this.chost(), group: this.group(), unavailable: v.unavailable, builds: rows }
  }

  /** For status: builds this box holds, builds its peers advertise, builds its binhost offers. */
  counts (): { local: number, network: number, served: number } {
    const v = this.view()
    return { local: v.local, network: v.network, served: v.merged?.builds.size ?? 0 }
  }
}

function offerOf (ad: BuildAd, hex = toHex(ad.blake2b), builder = toHex(ad.builder)): OfferedBuild {
  return { blake2b: hex, builder, group: ad.group, fields: ad.fields, size: ad.size }
}

/** The FileEntry the swarm downloads a build by (no SHA512: builds are addressed by BLAKE2B alone). */
function entryOf (ad: BuildAd): FileEntry {
  return { name: cacheName(ad), size: ad.size, blake2b: ad.blake2b, sha512: Buffer.alloc(0) }
}
