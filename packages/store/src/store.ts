import { EventEmitter } from 'node:events'
import { access } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { debugLogger, toHex, type Logger } from '@distswarm/protocol'
import { BuildHashes, type BuildDigests } from './buildhashes.js'
import { CacheDir, type Download, type Expected } from './cache.js'
import { DirWatcher } from './dirwatch.js'
import { StoreError } from './errors.js'
import { UseTimes } from './gc.js'
import { encodeIndex, INDEX_FILE, loadIndex } from './hashindex.js'
import { Indexer } from './indexer.js'
import { Inventory, type CacheFile, type LocalFile, type StoreEvents } from './inventory.js'
import { HashPool, MIN_HASH_WORKERS, splitHashWorkers, type PieceRange } from './pool.js'
import { mayHoldFiles, statFile, unlinkIfSame } from './scan.js'
import { StateWriter, type StateFile } from './statefile.js'
import { StreamHasher } from './streamhash.js'
import { verifyCacheDir, type VerifyOptions, type VerifyReport } from './verify.js'

export type { CacheFile, LocalFile, StoreEvents } from './inventory.js'

/** After a change, the index is saved this long after it, and no more often than every SAVE_INTERVAL_MS. */
const SAVE_DELAY_MS = 2000
const SAVE_INTERVAL_MS = 30_000
export const DEFAULT_SETTLE_MS = 500
export const DEFAULT_RESCAN_INTERVAL_MS = 60_000
export const DEFAULT_MAX_PENDING = 10_000

export interface StoreInit {
  /** Flat dirs to index and serve from, typically Portage's DISTDIR. Never written. Default: none. */
  distdirs?: string[]
  /** The cache dir this agent downloads into; indexed too. */
  cacheDir: string
  /** Where the hash index and the cache use times are kept across restarts (the agent's state dir). Default: none, every start hashes every file. */
  stateDir?: string
  /**
   * Hash threads in all, at least 2: downloads get 1 (2 from a total of 4,
   * one per digest), indexing files gets the rest. Default: twice
   * min(2, available cores), split evenly.
   */
  hashWorkers?: number
  /** Watch the dirs with fs.watch. Default true; when false (or a dir cannot be watched) it is rescanned every rescanIntervalMs instead. */
  watch?: boolean
  /** Quiet time after the last fs event on a name before the file is looked at. Default 500 ms. */
  settleMs?: number
  /** How often dirs that are not watched are rescanned (stat only, unless something changed). Default 60 000 ms. */
  rescanIntervalMs?: number
  /** Most names waiting to be looked at after fs events; past it the dir is rescanned instead. Default 10 000. */
  maxPending?: number
  /** Where failures a user must see (cannot save state, a dead hash worker) go. Default: debug namespace distswarm:store. */
  logger?: Logger
}

export interface StoreStats {
  /** Files read through and hashed since this Store was made. */
  filesHashed: number
  /** Bytes read to hash files, including reads given up because the file changed meanwhile. */
  bytesHashed: number
  /** The hash index file as start() found it; 'rebuilt' when it was unusable (see indexProblem). */
  index: 'off' | 'missing' | 'loaded' | 'rebuilt'
  /** Entries read from the index file at start. */
  indexEntries: number
  /** Why the index file was unusable. */
  indexProblem?: string
  /** Dirs watched by fs.watch; the others are rescanned periodically. */
  watchedDirs: number
  /** Hash threads at most: for indexing files, and for downloads. */
  hashThreads: { files: number, streams: number }
}

function checkInit (init: StoreInit): void {
  const bad = (option: string, why: string): never => { throw StoreError.INVALID_OPTION(option, why) }
  if (typeof init !== 'object' || init === null) bad('init', 'must be an object')
  if (typeof init.cacheDir !== 'string' || init.cacheDir === '') bad('cacheDir', 'must be a non-empty path')
  if (init.distdirs !== undefined && (!Array.isArray(init.distdirs) || init.distdirs.some((d) => typeof d !== 'string' || d === ''))) bad('distdirs', 'must be an array of non-empty paths')
  if (init.stateDir !== undefined && (typeof init.stateDir !== 'string' || init.stateDir === '')) bad('stateDir', 'must be a non-empty path')
  const int = (option: keyof StoreInit, min: number): void => {
    const v = init[option]
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) bad(option, `must be an integer of at least ${min}, got ${String(v)}`)
  }
  int('hashWorkers', MIN_HASH_WORKERS)
  int('settleMs', 0)
  int('rescanIntervalMs', 1)
  int('maxPending', 1)
  if (init.watch !== undefined && typeof init.watch !== 'boolean') bad('watch', 'must be a boolean')
}

/**
 * What this box holds, addressed by BLAKE2B. Files enter by a scan of the
 * distdirs and the cache dir, by fs events on them, or by a verified download;
 * they leave when they are deleted or change.
 *
 * The parts: an Inventory (the maps and the events), an Indexer (looks at
 * files: the saved hash index, hard links, the hash worker pool), a
 * DirWatcher (fs events and rescans), the CacheDir (downloads), and one
 * StateWriter saving the hash index and the cache use times in stateDir.
 */
export class Store extends EventEmitter<StoreEvents> {
  readonly cache: CacheDir
  readonly distdirs: readonly string[]
  private readonly logger: Logger
  private readonly cacheIdx: number
  private readonly stateDir: string | null
  private readonly pool: HashPool
  private readonly streamHasher: StreamHasher
  private readonly inventory: Inventory
  private readonly indexer: Indexer
  private readonly watcher: DirWatcher
  private readonly state: StateWriter
  private readonly indexFile: StateFile
  private readonly uses: UseTimes
  private readonly buildHashes: BuildHashes
  private readonly window: number
  private indexState: StoreStats['index']
  private indexEntries = 0
  private indexProblem: string | undefined
  private starting: Promise<void> | null = null
  private stopping: Promise<void> | null = null
  private stopped = false

  /** Checks the options; touches neither the disk nor a thread. */
  constructor (init: StoreInit) {
    checkInit(init)
    super()
    this.logger = init.logger ?? debugLogger('distswarm:store')
    this.distdirs = [...(init.distdirs ?? [])]
    const cacheDir = resolve(init.cacheDir)
    const threads = splitHashWorkers(init.hashWorkers)
    const hashLog = this.logger.child('hash')
    this.pool = new HashPool({ size: threads.files, logger: hashLog })
    this.streamHasher = new StreamHasher({ workers: threads.streams, logger: hashLog })
    this.cache = new CacheDir({ dir: cacheDir, hasher: this.streamHasher, pool: this.pool, logger: this.logger.child('cache') })
    const dirs = [...new Set([...this.distdirs.map((d) => resolve(d)), cacheDir])]
    this.cacheIdx = dirs.indexOf(cacheDir)
    this.stateDir = init.stateDir ?? null
    this.indexState = this.stateDir === null ? 'off' : 'missing'
    this.state = new StateWriter({ stateDir: this.stateDir, logger: this.logger.child('state') })
    this.indexFile = this.state.add({
      name: INDEX_FILE, what: 'hash index', delayMs: SAVE_DELAY_MS, minIntervalMs: SAVE_INTERVAL_MS, encode: () => encodeIndex(this.indexer.snapshot())
    })
    this.inventory = new Inventory(() => this.indexFile.markDirty())
    this.inventory.on('added', (f) => this.emit('added', f))
    this.inventory.on('removed', (f) => this.emit('removed', f))
    this.uses = new UseTimes({ writer: this.state, live: () => this.cacheDigests(), logger: this.logger.child('uses') })
    this.buildHashes = new BuildHashes({ pool: this.pool, writer: this.state, logger: this.logger.child('binpkg') })
    // Two per worker: one hashing, one queued, so no worker waits for the next stat.
    this.window = this.pool.size * 2
    const stopped = (): boolean => this.stopped
    this.indexer = new Indexer({ dirs, inventory: this.inventory, pool: this.pool, window: this.window, stopped, logger: this.logger.child('index') })
    this.watcher = new DirWatcher({
      indexer: this.indexer,
      inventory: this.inventory,
      watch: init.watch ?? true,
      settleMs: init.settleMs ?? DEFAULT_SETTLE_MS,
      rescanIntervalMs: init.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS,
      maxPending: init.maxPending ?? DEFAULT_MAX_PENDING,
      window: this.window,
      logger: this.logger.child('watch')
    })
  }

  /**
   * Prepares the cache dir, indexes every dir (reading only what the index
   * does not vouch for) and starts watching. Idempotent; after stop() it
   * rejects ERR_STORE_CLOSED. A start that fails stops the store.
   */
  start (): Promise<void> {
    if (this.stopped) return Promise.reject(StoreError.STORE_CLOSED())
    this.starting ??= this.run().catch(async (err: unknown) => {
      // Not awaited: stop() waits for this very promise.
      void this.stop()
      throw err
    })
    return this.starting
  }

  private async run (): Promise<void> {
    const started = Date.now()
    // A first index hashes at once, so its threads start now (state I/O
    // meanwhile). None start for dirs with nothing to list (a new cache dir,
    // the binhost's) nor over a saved index, which vouches for most files: each
    // costs some 60 ms of CPU to boot, on the way to the agent's control
    // socket. Work that comes anyway starts the threads it needs.
    const dirsWithEntries = await Promise.all(this.indexer.dirs.map(mayHoldFiles))
    const saved = this.stateDir !== null && await access(join(this.stateDir, INDEX_FILE)).then(() => true, () => false)
    if (dirsWithEntries.some(Boolean) && !saved) this.pool.warm()
    await this.cache.open()
    await this.state.start()
    await this.uses.load()
    await this.buildHashes.load(this.stateDir)
    if (this.stateDir !== null) {
      const loaded = await loadIndex(this.stateDir)
      this.indexState = loaded.state
      if (loaded.state === 'loaded') {
        this.indexer.previous = loaded.dirs
        this.indexEntries = loaded.entries
      } else if (loaded.state === 'rebuilt') {
        this.indexProblem = loaded.problem
        this.logger.warn('index.unusable', { dir: this.stateDir, problem: loaded.problem, note: 'hashing every file again' })
      }
    }
    await this.watcher.watch()
    for (let d = 0; d < this.indexer.dirs.length; d++) {
      // Empty when the watch began: whatever comes now is an fs event.
      if (!dirsWithEntries[d] && !(await mayHoldFiles(this.indexer.dirs[d]!))) continue
      const { filesHashed, bytesHashed } = this.pool
      const t = Date.now()
      await this.indexer.rescan(d)
      if (this.stopped) throw StoreError.STORE_CLOSED()
      this.logger.debug('dir.indexed', { dir: this.indexer.dirs[d], files: this.pool.filesHashed - filesHashed, bytes: this.pool.bytesHashed - bytesHashed, ms: Date.now() - t })
    }
    const pruned = this.indexer.countPruned()
    this.indexer.previous = null
    if (pruned > 0) this.logger.debug('index.pruned', { entries: pruned })
    // The saved index is brought up to date now, not SAVE_INTERVAL_MS later.
    if (pruned > 0) this.indexFile.markDirty()
    await this.indexFile.save()
    this.watcher.startPeriodic()
    this.logger.info('store.started', { files: this.inventory.size, hashed: this.pool.filesHashed, ms: Date.now() - started })
  }

  get size (): number {
    return this.inventory.size
  }

  get stats (): StoreStats {
    const stats: StoreStats = {
      filesHashed: this.pool.filesHashed,
      bytesHashed: this.pool.bytesHashed,
      index: this.indexState,
      indexEntries: this.indexEntries,
      watchedDirs: this.watcher.watched,
      hashThreads: { files: this.pool.size, streams: this.streamHasher.threads }
    }
    if (this.indexProblem !== undefined) stats.indexProblem = this.indexProblem
    return stats
  }

  /** One entry per content: the file advertised for it. */
  entries (): IterableIterator<LocalFile> {
    return this.inventory.entries()
  }

  get (blake2b: Uint8Array | string): LocalFile | undefined {
    return this.inventory.get(blake2b)
  }

  /** The files of that name, one per content. */
  findByName (name: string): LocalFile[] {
    return this.inventory.findByName(name)
  }

  /**
   * Re-hashes every copy of this digest, whatever its stat says: a file
   * rewritten in place with its size and mtime restored keeps its stat, and
   * only a peer's failed verification tells. A copy that changed leaves under
   * the old digest (and comes back under its new one). Resolves to how many
   * copies had changed.
   */
  recheck (blake2b: Uint8Array | string): Promise<number> {
    return this.indexer.recheck(typeof blake2b === 'string' ? blake2b : toHex(blake2b))
  }

  /**
   * Piece hashes (HashPool.pieces) of the advertised copy of a file, for a
   * peer that asks which of its sources lied; undefined when we hold none.
   */
  async hashPieces (blake2b: Uint8Array | string, range: PieceRange): Promise<Buffer[] | undefined> {
    const path = this.inventory.holdersOf(blake2b)[0]
    const t = path === undefined ? undefined : this.inventory.tracked(path)
    if (!t) return undefined
    return await this.pool.pieces(t.file.path, range, { dev: t.stat.dev, ino: t.stat.ino })
  }

  /**
   * BLAKE2B, MD5 and SHA1 of a binary package (a file of a PKGDIR, or a
   * download before it is committed), hashed in the pool. With `remember`
   * (the default) the digests are kept in the state dir by the file's stat,
   * so a restart does not read an unchanged file again.
   */
  async hashBuild (path: string, opts: { remember?: boolean } = {}): Promise<BuildDigests> {
    if (this.stopped) throw StoreError.STORE_CLOSED()
    return await this.buildHashes.hash(resolve(path), opts.remember ?? true)
  }

  /** Forgets the recorded digests of the files under `dir` that are not in `live`. */
  retainBuildHashes (live: ReadonlySet<string>, dir: string): void {
    this.buildHashes.retain(live, resolve(dir) + '/')
  }

  /** Piece hashes (HashPool.pieces) of a file the inventory does not hold, such as a binary package. */
  piecesOf (path: string, range: PieceRange): Promise<Buffer[]> {
    return this.pool.pieces(path, range)
  }

  /** Piece hashes of the bytes a download has written so far. */
  hashWritten (download: Download, range: PieceRange): Promise<Buffer[]> {
    return this.pool.pieces(download.tempPath, range)
  }

  /**
   * Re-hashes every file in the cache dir and reports those whose bytes are
   * not what the index recorded (or what `options.judge` wants). With
   * `remove`, deletes them, which withdraws their digests from peers (the
   * 'removed' event), and re-hashes the other copies of a changed digest (a
   * hard link in a distdir shares the bad bytes). Distdirs are never touched.
   */
  async verify (options: VerifyOptions = {}): Promise<VerifyReport> {
    if (this.stopped) throw StoreError.STORE_CLOSED()
    const report = await verifyCacheDir({
      cacheDir: this.cache.dir,
      pool: this.pool,
      window: this.window,
      recorded: (path) => this.inventory.tracked(path)?.file,
      forget: (path) => this.inventory.forget(path),
      logger: this.logger.child('verify')
    }, options)
    for (const bad of report.bad) {
      if (bad.removed && bad.reason === 'changed' && bad.expected !== null) await this.recheck(bad.expected)
    }
    return report
  }

  /** Starts a verified download into the cache dir (see CacheDir.begin). */
  begin (expected: Expected): Promise<Download> {
    return this.cache.begin(expected)
  }

  /** Commits a download and adds the published file to the inventory, with the digests verified while it was written. */
  async commit (download: Download): Promise<LocalFile> {
    const { name, size, blake2b, sha512 } = download.expected
    const path = join(this.cache.dir, name)
    // The cache dir's watcher will see the new name too; this keeps it from hashing what was just verified.
    this.indexer.committing.add(path)
    try {
      const final = await download.commit()
      const got = download.digests
      const stat = await statFile(final)
      if (got && stat && !this.stopped) this.inventory.put(this.cacheIdx, name, final, { ...got, stat }, true)
      return this.get(blake2b) ?? { name, size, blake2b, sha512: got?.sha512 ?? sha512 ?? Buffer.alloc(0), path: final }
    } finally {
      this.indexer.committing.delete(path)
    }
  }

  // --- the quota (see gc.ts for the order) ---

  /** Bytes of the files in the cache dir. */
  get cacheBytes (): number {
    let bytes = 0
    for (const t of this.inventory.inDir(this.cacheIdx)) bytes += t.file.size
    return bytes
  }

  /** Records a use of this content now (a fetch that found it here, a peer's request for it): eviction takes the least recently used first. */
  touch (blake2b: Uint8Array | string): void {
    this.uses.touch(typeof blake2b === 'string' ? blake2b : toHex(blake2b))
  }

  /** The files of the cache dir, each with when it was last used. */
  cacheFiles (): CacheFile[] {
    const out: CacheFile[] = []
    for (const t of this.inventory.inDir(this.cacheIdx)) {
      const mtime = Number(t.stat.mtimeNs / 1_000_000n)
      out.push({ ...t.file, usedAt: Math.max(mtime, this.uses.get(t.hex) ?? 0) })
    }
    return out
  }

  /**
   * Deletes these files of the cache dir, each unless a commit is placing it
   * or another file took its name since it was indexed (a commit indexes
   * its file only at its last step, and the agent pins it until its fetch
   * has returned). Paths outside the cache dir are refused: distdirs are
   * Portage's. When no copy of a content is left on this box, peers are told
   * (the 'removed' event); a cache file that portage-fetch hard-linked into a
   * distdir loses only its cache name, and its content stays, served from
   * the distdir. Resolves to the paths deleted.
   */
  async evict (paths: Iterable<string>): Promise<string[]> {
    if (this.stopped) throw StoreError.STORE_CLOSED()
    const removed: string[] = []
    for (const path of paths) {
      const t = this.inventory.tracked(path)
      if (t?.dir !== this.cacheIdx || this.indexer.committing.has(path)) continue
      if (!await unlinkIfSame(path, t.stat, this.logger)) continue
      this.logger.debug('file.evicted', { path, bytes: t.file.size })
      this.inventory.forget(path)
      removed.push(path)
    }
    return removed
  }

  private * cacheDigests (): Generator<string> {
    for (const t of this.inventory.inDir(this.cacheIdx)) yield t.hex
  }

  /** Stops watching and hashing, suspends downloads in progress (to be resumed) and saves the state. Idempotent. */
  stop (): Promise<void> {
    this.stopping ??= this.shutdown()
    return this.stopping
  }

  private async shutdown (): Promise<void> {
    this.stopped = true
    const watching = this.watcher.stop()
    // Running hashes are cancelled within one read chunk; their looks then settle.
    await this.pool.close()
    await this.cache.suspendAll()
    await this.streamHasher.close()
    await Promise.allSettled([watching, this.indexer.settled(), this.starting])
    await this.state.stop()
  }
}
