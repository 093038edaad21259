import { EventEmitter } from 'node:events'
import createDebug from 'debug'
import { toHex, type FileEntry } from '@distswarm/protocol'
import { CacheDir, type Download, type Expected } from './cache.js'
import { hashFile } from './hash.js'
import { scanDir } from './scan.js'

const log = createDebug('distswarm:store')

/** A file this box holds: an inventory entry plus where it lies. */
export interface LocalFile extends FileEntry {
  path: string
}

export interface StoreInit {
  /** Flat dirs to index and serve from, typically Portage's DISTDIR. Never written. Default: none. */
  distdirs?: string[]
  /** The cache dir this agent downloads into; indexed too. */
  cacheDir: string
}

export interface StoreEvents {
  added: [LocalFile]
}

/**
 * What this box holds, addressed by BLAKE2B. Files enter by a scan of the
 * distdirs and the cache dir, or by a verified download.
 */
export class Store extends EventEmitter<StoreEvents> {
  readonly cache: CacheDir
  readonly distdirs: readonly string[]
  private readonly byDigest = new Map<string, LocalFile>()
  private readonly byName = new Map<string, Set<string>>()

  constructor (init: StoreInit) {
    super()
    this.distdirs = [...(init.distdirs ?? [])]
    this.cache = new CacheDir({ dir: init.cacheDir })
  }

  /** Prepares the cache dir and indexes every dir. */
  async open (): Promise<void> {
    await this.cache.open()
    for (const dir of [...this.distdirs, this.cache.dir]) await this.indexDir(dir)
  }

  get size (): number {
    return this.byDigest.size
  }

  entries (): IterableIterator<LocalFile> {
    return this.byDigest.values()
  }

  get (blake2b: Uint8Array | string): LocalFile | undefined {
    return this.byDigest.get(typeof blake2b === 'string' ? blake2b : toHex(blake2b))
  }

  findByName (name: string): LocalFile[] {
    return [...(this.byName.get(name) ?? [])].map((hex) => this.byDigest.get(hex)!)
  }

  /** Starts a verified download into the cache dir (see CacheDir.begin). */
  begin (expected: Expected): Promise<Download> {
    return this.cache.begin(expected)
  }

  /** Commits a download and adds the published file to the inventory. */
  async commit (download: Download): Promise<LocalFile> {
    const path = await download.commit()
    const { name, size, blake2b, sha512 } = download.expected
    return this.add({ name, size, blake2b, sha512: sha512 ?? Buffer.alloc(0), path })
  }

  private async indexDir (dir: string): Promise<void> {
    const files = await scanDir(dir)
    let bytes = 0
    const started = Date.now()
    for (const f of files) {
      const d = await hashFile(f.path).catch((err: unknown) => {
        log('skipping %s: %s', f.path, (err as Error).message)
        return null
      })
      if (d === null) continue
      bytes += d.size
      this.add({ name: f.name, size: d.size, blake2b: d.blake2b, sha512: d.sha512, path: f.path })
    }
    log('indexed %d files (%d bytes) in %s in %d ms', files.length, bytes, dir, Date.now() - started)
  }

  private add (file: LocalFile): LocalFile {
    const hex = toHex(file.blake2b)
    const known = this.byDigest.get(hex)
    if (known) return known
    this.byDigest.set(hex, file)
    let names = this.byName.get(file.name)
    if (!names) this.byName.set(file.name, names = new Set())
    names.add(hex)
    this.emit('added', file)
    return file
  }
}
