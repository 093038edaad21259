/**
 * The builds this box fetched from peers: `<stateDir>/binpkgs/files/`, a
 * dir of the agent's own (never Portage's read-only distdir), kept by a
 * Store of its own, so downloads are verified and placed atomically, resume,
 * survive restarts without a re-hash and leave under a quota. Each file's
 * signed advertisement (its builder's, unchanged) is kept beside it in
 * `<stateDir>/binpkgs/builds.json`, so the box advertises it again after a
 * restart. A file without one, or one without its file, is dropped.
 */
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isHexDigest, toHex, type Logger } from '@distswarm/protocol'
import { Store, StoreError, writeFileAtomic, type Download, type Expected, type LocalFile } from '@distswarm/store'
import type { BuildAd } from '@distswarm/swarm'

export interface CachedBuild { ad: BuildAd, file: LocalFile }

export interface BuildCacheInit {
  /** The agent's state dir: the cache is its `binpkgs/`. */
  stateDir: string
  /** Checks an advertisement read back from disk (its signature). Default: every one passes. */
  verify?: (ad: BuildAd) => boolean
  logger: Logger
}

export interface BuildCacheEvents {
  /** A build came or went. */
  change: []
}

const ADS_FILE = 'builds.json'
const VERSION = 1
const MAX_BUILDS = 100_000

type AdJson = { blake2b: string, size: number, group: string, fields: Record<string, string>, builder: string, signature: string }

function toJson (ad: BuildAd): AdJson {
  return { blake2b: toHex(ad.blake2b), size: ad.size, group: ad.group, fields: ad.fields, builder: toHex(ad.builder), signature: toHex(ad.signature) }
}

function fromJson (j: unknown): BuildAd | null {
  const a = j as Partial<AdJson> | null
  if (typeof a !== 'object' || a === null) return null
  const hex = (v: unknown, len: number): v is string => typeof v === 'string' && v.length === len && /^[0-9a-f]*$/.test(v)
  if (!hex(a.blake2b, 128) || !hex(a.builder, 64) || !hex(a.signature, 128)) return null
  if (!Number.isSafeInteger(a.size) || a.size! < 0 || typeof a.group !== 'string') return null
  if (typeof a.fields !== 'object' || a.fields === null || !Object.values(a.fields).every((v) => typeof v === 'string')) return null
  return {
    blake2b: Buffer.from(a.blake2b, 'hex'), size: a.size!, group: a.group, fields: { ...a.fields },
    builder: Buffer.from(a.builder, 'hex'), signature: Buffer.from(a.signature, 'hex')
  }
}

/** The file name a build is kept under: its digest, and the extension of its format (Portage tells formats by it). */
export function cacheName (ad: BuildAd): string {
  const path = ad.fields.PATH ?? ''
  return `${toHex(ad.blake2b)}.${path.endsWith('.gpkg.tar') ? 'gpkg.tar' : 'xpak'}`
}

export class BuildCache extends EventEmitter<BuildCacheEvents> {
  readonly store: Store
  readonly dir: string
  private readonly adsPath: string
  private readonly verify: (ad: BuildAd) => boolean
  private readonly log: Logger
  private readonly ads = new Map<string, BuildAd>()
  private saving: Promise<void> = Promise.resolve()
  private started = false

  constructor (init: BuildCacheInit) {
    super()
    const root = join(init.stateDir, 'binpkgs')
    this.dir = join(root, 'files')
    this.adsPath = join(root, ADS_FILE)
    this.verify = init.verify ?? (() => true)
    this.log = init.logger
    // A store of its own: its hash index and use times live in binpkgs/, not beside the distfiles'.
    this.store = new Store({ cacheDir: this.dir, stateDir: root, hashWorkers: 2, logger: init.logger.child('store') })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.load()
    await this.store.start()
    // A file without its advertisement (a crash between the two) cannot be offered: nothing vouches for its stanza.
    const orphans = [...this.store.entries()].filter((f) => !this.ads.has(toHex(f.blake2b)))
    if (orphans.length > 0) {
      this.log.info('build-cache.orphans-removed', { files: orphans.length })
      await this.store.evict(orphans.map((f) => f.path))
    }
    let dropped = 0
    for (const hex of [...this.ads.keys()]) if (!this.store.get(hex)) { this.ads.delete(hex); dropped++ }
    if (dropped > 0) await this.save()
    this.store.on('removed', (f) => {
      const hex = toHex(f.blake2b)
      if (this.store.get(hex) || !this.ads.delete(hex)) return
      void this.save()
      this.emit('change')
    })
  }

  async stop (): Promise<void> {
    await this.store.stop()
    await this.saving
  }

  get size (): number {
    return this.ads.size
  }

  get (hex: string): CachedBuild | undefined {
    const ad = this.ads.get(hex)
    const file = ad && this.store.get(hex)
    return file ? { ad: ad!, file } : undefined
  }

  entries (): CachedBuild[] {
    const out: CachedBuild[] = []
    for (const hex of this.ads.keys()) {
      const c = this.get(hex)
      if (c) out.push(c)
    }
    return out
  }

  /**
   * What the build Fetcher writes through: the store, with one more check
   * before a download is placed: SIZE, MD5 and SHA1 of the stanza (the
   * download itself checked BLAKE2B and the advertisement's size, which is
   * another field of it). A mismatch means the stanza its builder signed
   * does not describe these bytes: nothing is placed.
   */
  writer (adOf: (hex: string) => BuildAd | undefined): Pick<Store, 'begin' | 'commit' | 'hashWritten'> {
    return {
      begin: (expected: Expected) => this.store.begin(expected),
      hashWritten: (download, range) => this.store.hashWritten(download, range),
      commit: async (download: Download) => {
        const hex = toHex(download.expected.blake2b)
        const ad = adOf(hex)
        if (!ad) throw StoreError.VERIFY_FAILED(download.expected.name, 'the build is no longer advertised')
        // The index serves the stanza's SIZE: Portage would download a file of another size whole, then refuse it.
        const size = ad.fields.SIZE
        if (size !== undefined && size !== '' && Number(size) !== download.expected.size) throw StoreError.VERIFY_FAILED(download.expected.name, 'its SIZE is not the one its stanza gives')
        const got = await this.store.hashBuild(download.tempPath, { remember: false })
        for (const [key, value] of [['MD5', got.md5], ['SHA1', got.sha1], ['BLAKE2B', got.blake2b]] as const) {
          const want = key === 'BLAKE2B' ? hex : ad.fields[key]?.toLowerCase()
          if (want !== undefined && want !== '' && want !== value) throw StoreError.VERIFY_FAILED(download.expected.name, `its ${key} is not the one its stanza gives`)
        }
        // The advertisement first: a crash after it and before the file leaves an ad that start() drops.
        this.ads.set(hex, ad)
        await this.save()
        try {
          const file = await this.store.commit(download)
          this.emit('change')
          return file
        } catch (err) {
          if (!this.store.get(hex)) {
            this.ads.delete(hex)
            void this.save()
          }
          throw err
        }
      }
    }
  }

  private async load (): Promise<void> {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(this.adsPath, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('build-cache.unreadable', { file: this.adsPath, why: (err as Error).message, note: 'the fetched builds are dropped' })
      return
    }
    const rows = (parsed as { version?: unknown, builds?: unknown })?.version === VERSION ? (parsed as { builds?: unknown }).builds : null
    if (!Array.isArray(rows)) {
      this.log.warn('build-cache.unreadable', { file: this.adsPath, why: 'not a version 1 list of builds', note: 'the fetched builds are dropped' })
      return
    }
    let bad = 0
    for (const row of rows.slice(0, MAX_BUILDS)) {
      const ad = fromJson(row)
      if (ad && isHexDigest(toHex(ad.blake2b)) && this.verify(ad)) this.ads.set(toHex(ad.blake2b), ad)
      else bad++
    }
    if (bad > 0) this.log.warn('build-cache.bad-entries', { file: this.adsPath, entries: bad, note: 'their files are dropped' })
  }

  /** Writes builds.json atomically; saves run one after another. */
  private save (): Promise<void> {
    this.saving = this.saving.then(async () => {
      const text = JSON.stringify({ version: VERSION, builds: [...this.ads.values()].map(toJson) }) + '\n'
      try {
        await writeFileAtomic(this.adsPath, Buffer.from(text))
      } catch (err) {
        this.log.warn('build-cache.save-failed', { file: this.adsPath, why: (err as Error).message })
      }
    })
    return this.saving
  }
}
