import { EventEmitter } from 'node:events'
import { watch, type FSWatcher } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import createDebug from 'debug'
import { toHex, type FileEntry } from '@distswarm/protocol'
import { CacheDir, type Download, type Expected } from './cache.js'
import { UseTimes } from './gc.js'
import { StoreError } from './errors.js'
import { loadIndex, saveIndex, type IndexDir } from './hashindex.js'
import { HashPool, LOOK_AGAIN, type HashedFile, type PieceRange } from './pool.js'
import { StreamHasher } from './streamhash.js'
import { forEachBounded, isDistfileName, pickDistfiles, sameStat, statFile, unlinkIfSame, type StatKey } from './scan.js'
import { verifyCacheDir, type VerifyOptions, type VerifyReport } from './verify.js'

const log = createDebug('distswarm:store')

/** After a change, the index is saved this long after it, and no more often than every SAVE_INTERVAL_MS. */
const SAVE_DELAY_MS = 2000
const SAVE_INTERVAL_MS = 30_000
/** Times a file that changes while it is read is tried again before it is left to its next fs event. */
const HASH_ATTEMPTS = 3
/** Files looked at between two turns of the event loop during a rescan. */
const YIELD_EVERY = 256
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A file this box holds: an inventory entry plus where it lies. */
export interface LocalFile extends FileEntry {
  path: string
}

/** A file of the cache dir, for the quota. */
export interface CacheFile extends LocalFile {
  /** ms since the epoch: the later of its last use (Store.touch) and its mtime */
  usedAt: number
}

export interface StoreInit {
  /** Flat dirs to index and serve from, typically Portage's DISTDIR. Never written. Default: none. */
  distdirs?: string[]
  /** The cache dir this agent downloads into; indexed too. */
  cacheDir: string
  /** Where the hash index is kept across restarts (the agent's state dir). Default: none, every open hashes every file. */
  stateDir?: string
  /** Worker threads that hash files. Default: min(2, available cores). */
  hashWorkers?: number
  /** Watch the dirs with fs.watch. Default true; when false (or a dir cannot be watched) it is rescanned every rescanIntervalMs instead. */
  watch?: boolean
  /** Quiet time after the last fs event on a name before the file is looked at. Default 500 ms. */
  settleMs?: number
  /** How often dirs that are not watched are rescanned (stat only, unless something changed). Default 60 000 ms. */
  rescanIntervalMs?: number
  /** Most names waiting to be looked at after fs events; past it the dir is rescanned instead. Default 10 000. */
  maxPending?: number
}

export interface StoreEvents {
  /** Content this box did not hold, or held content now advertised under another name. */
  added: [LocalFile]
  /** Content this box no longer holds: every file with that BLAKE2B is gone or changed. */
  removed: [LocalFile]
}

export interface StoreStats {
  /** Files read through and hashed since this Store was made. */
  filesHashed: number
  /** Bytes read to hash files, including reads given up because the file changed meanwhile. */
  bytesHashed: number
  /** The hash index file as open() found it; 'rebuilt' when it was unusable (see indexProblem). */
  index: 'off' | 'missing' | 'loaded' | 'rebuilt'
  /** Entries read from the index file at open. */
  indexEntries: number
  /** Why the index file was unusable. */
  indexProblem?: string
  /** Dirs watched by fs.watch; the others are rescanned periodically. */
  watchedDirs: number
}

/** One indexed file and the stat it was hashed at. */
interface Tracked {
  file: LocalFile
  hex: string
  dir: number
  stat: StatKey
}

interface WatchedDir {
  path: string
  watcher: FSWatcher | null
  /** dev:ino of the dir when the watcher was set up: a dir removed and made again needs a new watcher. */
  ident: string | null
}

interface Pending {
  dir: number
  name: string
  due: number
}

/**
 * What this box holds, addressed by BLAKE2B. Files enter by a scan of the
 * distdirs and the cache dir, by fs events on them, or by a verified download;
 * they leave when they are deleted or change.
 *
 * Hashing runs in a small worker pool; a persistent index (in stateDir) means
 * a file is read again only when its dev, inode, size or mtime changed.
 */
export class Store extends EventEmitter<StoreEvents> {
  readonly cache: CacheDir
  readonly distdirs: readonly string[]
  private readonly dirs: WatchedDir[]
  private readonly cacheIdx: number
  private readonly stateDir: string | null
  private readonly pool: HashPool
  private readonly streamHasher: StreamHasher
  private readonly uses: UseTimes
  private readonly window: number
  private readonly watchEnabled: boolean
  private readonly settleMs: number
  private readonly rescanIntervalMs: number
  private readonly maxPending: number

  private readonly files = new Map<string, Tracked>()
  /** Paths of each digest, the advertised one first: earlier dir, then name. */
  private readonly holders = new Map<string, string[]>()
  private readonly names = new Map<string, Set<string>>()
  /** A tracked path by "dev:ino": a hard link of a known file (portage-fetch links cache files into DISTDIR) is not read again. */
  private readonly byInode = new Map<string, string>()
  /** The index file's entries while open() runs: what is found unchanged is taken from here, the rest is pruned. */
  private previous: Map<string, IndexDir> | null = null
  /** Files that could not be read (EACCES, EIO), with the stat they failed at: rescans skip them until they change or have an fs event. */
  private readonly failed = new Map<string, StatKey>()
  private readonly running = new Map<string, Promise<void>>()
  private readonly again = new Map<string, Promise<void>>()
  private readonly committing = new Set<string>()
  /** Names with fs events, in order of their last event, so the first one is always the next due. */
  private readonly pending = new Map<string, Pending>()
  private active = 0
  private readonly toRescan = new Set<number>()
  private sweeping: Promise<void> | null = null
  private ticking = false

  private pumpTimer: NodeJS.Timeout | null = null
  private sweepTimer: NodeJS.Timeout | null = null
  private rescanTimer: NodeJS.Timeout | null = null
  private saveTimer: NodeJS.Timeout | null = null
  private saving: Promise<void> = Promise.resolve()
  private dirty = false
  private lastSave = 0
  private indexState: StoreStats['index']
  private indexEntries = 0
  private indexProblem: string | undefined
  private opening: Promise<void> | null = null
  private closing: Promise<void> | null = null
  private closed = false

  constructor (init: StoreInit) {
    super()
    this.distdirs = [...(init.distdirs ?? [])]
    const cacheDir = resolve(init.cacheDir)
    this.streamHasher = new StreamHasher({ workers: init.hashWorkers })
    this.cache = new CacheDir({ dir: cacheDir, hasher: this.streamHasher })
    const paths = [...new Set([...this.distdirs.map((d) => resolve(d)), cacheDir])]
    this.dirs = paths.map((path) => ({ path, watcher: null, ident: null }))
    this.cacheIdx = paths.indexOf(cacheDir)
    this.stateDir = init.stateDir ?? null
    this.indexState = this.stateDir === null ? 'off' : 'missing'
    this.uses = new UseTimes({ stateDir: this.stateDir, live: () => this.cacheDigests() })
    this.pool = new HashPool({ size: init.hashWorkers })
    // Two per worker: one hashing, one queued, so no worker waits for the next stat.
    this.window = this.pool.size * 2
    this.watchEnabled = init.watch ?? true
    this.settleMs = init.settleMs ?? 500
    this.rescanIntervalMs = init.rescanIntervalMs ?? 60_000
    this.maxPending = init.maxPending ?? 10_000
  }

  /** Prepares the cache dir, indexes every dir (reading only what the index does not vouch for) and starts watching. */
  open (): Promise<void> {
    if (this.closed) return Promise.reject(StoreError.STORE_CLOSED())
    this.opening ??= this.start().catch(async (err: unknown) => {
      // Not awaited: close() waits for this very promise.
      void this.close()
      throw err
    })
    return this.opening
  }

  private async start (): Promise<void> {
    const started = Date.now()
    this.lastSave = started
    await this.cache.open()
    await this.uses.load()
    if (this.stateDir !== null) {
      const loaded = await loadIndex(this.stateDir)
      this.indexState = loaded.state
      if (loaded.state === 'loaded') {
        this.previous = loaded.dirs
        this.indexEntries = loaded.entries
      } else if (loaded.state === 'rebuilt') {
        this.indexProblem = loaded.problem
        log('hash index in %s is unusable (%s); hashing every file again', this.stateDir, loaded.problem)
      }
    }
    // Watch before listing, so a file that lands between the two is not missed.
    for (let d = 0; d < this.dirs.length; d++) await this.tryWatch(d)
    for (let d = 0; d < this.dirs.length; d++) {
      const { filesHashed, bytesHashed } = this.pool
      const t = Date.now()
      await this.rescan(d)
      if (this.closed) throw StoreError.STORE_CLOSED()
      log('indexed %s: %d files hashed (%d bytes) in %d ms', this.dirs[d]!.path, this.pool.filesHashed - filesHashed, this.pool.bytesHashed - bytesHashed, Date.now() - t)
    }
    let pruned = 0
    for (const [dir, entries] of this.previous ?? []) {
      for (const name of entries.keys()) if (!this.files.has(join(dir, name))) pruned++
    }
    this.previous = null
    if (pruned > 0) {
      log('pruned %d index entries of files that are gone', pruned)
      this.dirty = true
    }
    if (this.dirty) await this.save()
    this.rescanTimer = setInterval(() => this.periodic(), this.rescanIntervalMs)
    this.rescanTimer.unref()
    log('holding %d files, %d hashed, in %d ms', this.holders.size, this.pool.filesHashed, Date.now() - started)
  }

  get size (): number {
    return this.holders.size
  }

  get stats (): StoreStats {
    const stats: StoreStats = {
      filesHashed: this.pool.filesHashed,
      bytesHashed: this.pool.bytesHashed,
      index: this.indexState,
      indexEntries: this.indexEntries,
      watchedDirs: this.dirs.filter((d) => d.watcher !== null).length
    }
    if (this.indexProblem !== undefined) stats.indexProblem = this.indexProblem
    return stats
  }

  /** One entry per content: the file advertised for it. */
  entries (): IterableIterator<LocalFile> {
    return this.advertised()
  }

  /**
   * Re-hashes every copy of this digest, whatever its stat says: a file
   * rewritten in place with its size and mtime restored keeps its stat, and
   * only a peer's failed verification tells. A copy that changed leaves under
   * the old digest (and comes back under its new one). Resolves to how many
   * copies had changed.
   */
  async recheck (blake2b: Uint8Array | string): Promise<number> {
    const hex = typeof blake2b === 'string' ? blake2b : toHex(blake2b)
    let changed = 0
    for (const path of [...this.holders.get(hex) ?? []]) {
      const t = this.files.get(path)
      if (!t || this.closed) continue
      const out = await this.pool.hash(path, { dev: t.stat.dev, ino: t.stat.ino })
      if (out.ok && toHex(out.blake2b) === hex) continue
      changed++
      log('%s no longer has the content it was indexed with', path)
      if (out.ok) this.put(t.dir, t.file.name, path, out, true)
      else this.forget(path)
    }
    return changed
  }

  /**
   * Piece hashes (HashPool.pieces) of the advertised copy of a file, for a
   * peer that asks which of its sources lied; undefined when we hold none.
   */
  async hashPieces (blake2b: Uint8Array | string, range: PieceRange): Promise<Buffer[] | undefined> {
    const path = this.holders.get(typeof blake2b === 'string' ? blake2b : toHex(blake2b))?.[0]
    const t = path === undefined ? undefined : this.files.get(path)
    if (!t) return undefined
    return await this.pool.pieces(path!, range, { dev: t.stat.dev, ino: t.stat.ino })
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
    if (this.closed) throw StoreError.STORE_CLOSED()
    const report = await verifyCacheDir({
      cacheDir: this.cache.dir,
      pool: this.pool,
      window: this.window,
      recorded: (path) => this.files.get(path)?.file,
      forget: (path) => this.forget(path)
    }, options)
    for (const bad of report.bad) {
      if (bad.removed && bad.reason === 'changed' && bad.expected !== null) await this.recheck(bad.expected)
    }
    return report
  }

  private * advertised (): Generator<LocalFile> {
    for (const paths of this.holders.values()) yield this.files.get(paths[0]!)!.file
  }

  get (blake2b: Uint8Array | string): LocalFile | undefined {
    const path = this.holders.get(typeof blake2b === 'string' ? blake2b : toHex(blake2b))?.[0]
    return path === undefined ? undefined : this.files.get(path)?.file
  }

  /** The files of that name, one per content. */
  findByName (name: string): LocalFile[] {
    const byHex = new Map<string, LocalFile>()
    for (const path of this.names.get(name) ?? []) {
      const t = this.files.get(path)!
      if (!byHex.has(t.hex)) byHex.set(t.hex, t.file)
    }
    return [...byHex.values()]
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
    this.committing.add(path)
    try {
      const final = await download.commit()
      const got = download.digests
      const stat = await statFile(final)
      if (got && stat && !this.closed) this.put(this.cacheIdx, name, final, { ...got, stat }, true)
      return this.get(blake2b) ?? { name, size, blake2b, sha512: got?.sha512 ?? sha512 ?? Buffer.alloc(0), path: final }
    } finally {
      this.committing.delete(path)
    }
  }

  // --- the quota (see gc.ts for the order) ---

  /** Bytes of the published files in the cache dir; partial downloads are not counted. */
  get cacheBytes (): number {
    let bytes = 0
    for (const t of this.files.values()) if (t.dir === this.cacheIdx) bytes += t.file.size
    return bytes
  }

  /** Records a use of this content now (a fetch that found it here, a peer's request for it): eviction takes the least recently used first. */
  touch (blake2b: Uint8Array | string): void {
    this.uses.touch(typeof blake2b === 'string' ? blake2b : toHex(blake2b))
  }

  /** The files of the cache dir, each with when it was last used. */
  cacheFiles (): CacheFile[] {
    const out: CacheFile[] = []
    for (const t of this.files.values()) {
      if (t.dir !== this.cacheIdx) continue
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
    if (this.closed) throw StoreError.STORE_CLOSED()
    const removed: string[] = []
    for (const path of paths) {
      const t = this.files.get(path)
      if (t?.dir !== this.cacheIdx || this.committing.has(path)) continue
      if (!await unlinkIfSame(path, t.stat, log)) continue
      log('evicted %s (%d bytes)', path, t.file.size)
      this.forget(path)
      removed.push(path)
    }
    return removed
  }

  private * cacheDigests (): Generator<string> {
    for (const t of this.files.values()) if (t.dir === this.cacheIdx) yield t.hex
  }

  /** Stops watching and hashing and saves the index. Idempotent. */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    this.closed = true
    for (const t of [this.pumpTimer, this.sweepTimer, this.saveTimer]) if (t) clearTimeout(t)
    if (this.rescanTimer) clearInterval(this.rescanTimer)
    this.pumpTimer = this.sweepTimer = this.saveTimer = this.rescanTimer = null
    for (let d = 0; d < this.dirs.length; d++) this.unwatch(d)
    this.pending.clear()
    // Running hashes are cancelled within one read chunk; their refreshes then settle.
    await this.pool.close()
    await this.streamHasher.close()
    await Promise.allSettled([...this.running.values(), ...this.again.values(), this.sweeping, this.opening])
    if (this.dirty) await this.save()
    await this.saving
    await this.uses.close()
  }

  // --- keeping the inventory current ---

  /**
   * Looks at one path and brings the inventory in line with it. At most one
   * look per path runs at a time; calls meanwhile share one follow-up look.
   * Never rejects.
   */
  private refresh (dir: number, name: string, listed?: StatKey): Promise<void> {
    const path = join(this.dirs[dir]!.path, name)
    const running = this.running.get(path)
    if (running) {
      let next = this.again.get(path)
      if (!next) {
        next = running.then(() => {
          this.again.delete(path)
          return this.refresh(dir, name)
        })
        this.again.set(path, next)
      }
      return next
    }
    const look = this.examine(dir, name, path, listed).catch((err: unknown) => {
      if ((err as StoreError).code !== 'ERR_STORE_CLOSED') log('cannot index %s: %s', path, (err as Error).message)
    }).finally(() => this.running.delete(path))
    this.running.set(path, look)
    return look
  }

  private async examine (dir: number, name: string, path: string, listed: StatKey | undefined): Promise<void> {
    let stat: StatKey | null | undefined = listed
    for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
      if (this.closed) return
      stat ??= isDistfileName(name) ? await statFile(path) : null
      if (stat === null) {
        this.forget(path)
        return
      }
      const known = this.files.get(path)
      if (known && sameStat(known.stat, stat)) return
      if (this.committing.has(path)) return
      const prev = this.previous?.get(this.dirs[dir]!.path)?.get(name)
      if (prev && sameStat(prev.stat, stat)) {
        this.put(dir, name, path, { size: Number(stat.size), blake2b: prev.blake2b, sha512: prev.sha512, stat }, false)
        return
      }
      const linked = this.files.get(this.byInode.get(`${stat.dev}:${stat.ino}`) ?? '')
      if (linked && sameStat(linked.stat, stat)) {
        this.put(dir, name, path, { size: Number(stat.size), blake2b: linked.file.blake2b, sha512: linked.file.sha512, stat }, true)
        return
      }
      const failedAt = this.failed.get(path)
      if (failedAt && sameStat(failedAt, stat)) return
      const out = await this.pool.hash(path, { dev: stat.dev, ino: stat.ino })
      if (out.ok) {
        this.put(dir, name, path, out, true)
        return
      }
      if (!LOOK_AGAIN.has(out.code)) {
        log('cannot read %s: %s', path, out.message)
        this.forget(path)
        this.failed.set(path, stat)
        return
      }
      stat = undefined
    }
    if (this.closed) return
    // Its next fs event (or rescan) brings it back once it holds still.
    log('%s keeps changing; leaving it out for now', path)
    this.forget(path)
  }

  /** Records `path` with the given digests; `changed` when the index file does not have it yet. */
  private put (dir: number, name: string, path: string, h: HashedFile, changed: boolean): void {
    const hex = toHex(h.blake2b)
    this.failed.delete(path)
    if (changed) this.markDirty()
    const old = this.files.get(path)
    if (old?.hex === hex) {
      this.unlinkInode(old)
      old.stat = h.stat
      this.byInode.set(`${h.stat.dev}:${h.stat.ino}`, path)
      return
    }
    // Same name, new content: the old digest goes first, then the new one comes.
    if (old) this.forget(path)
    const t: Tracked = { file: { name, size: h.size, blake2b: h.blake2b, sha512: h.sha512, path }, hex, dir, stat: h.stat }
    this.files.set(path, t)
    this.byInode.set(`${h.stat.dev}:${h.stat.ino}`, path)
    let paths = this.names.get(name)
    if (!paths) this.names.set(name, paths = new Set())
    paths.add(path)
    const holders = this.holders.get(hex)
    if (!holders) {
      this.holders.set(hex, [path])
      this.emit('added', t.file)
      return
    }
    let i = 0
    while (i < holders.length && this.ranksBefore(this.files.get(holders[i]!)!, t)) i++
    holders.splice(i, 0, path)
    // Peers know the content already; they only need to hear of a new name.
    if (i === 0 && this.files.get(holders[1]!)!.file.name !== name) this.emit('added', t.file)
  }

  private unlinkInode (t: Tracked): void {
    const key = `${t.stat.dev}:${t.stat.ino}`
    if (this.byInode.get(key) === t.file.path) this.byInode.delete(key)
  }

  private ranksBefore (a: Tracked, b: Tracked): boolean {
    return a.dir < b.dir || (a.dir === b.dir && a.file.name < b.file.name)
  }

  private forget (path: string): void {
    this.failed.delete(path)
    const t = this.files.get(path)
    if (!t) return
    this.markDirty()
    this.files.delete(path)
    this.unlinkInode(t)
    const paths = this.names.get(t.file.name)
    paths?.delete(path)
    if (paths?.size === 0) this.names.delete(t.file.name)
    const holders = this.holders.get(t.hex)!
    const i = holders.indexOf(path)
    holders.splice(i, 1)
    if (holders.length === 0) {
      this.holders.delete(t.hex)
      this.emit('removed', t.file)
    } else if (i === 0) {
      const next = this.files.get(holders[0]!)!.file
      if (next.name !== t.file.name) this.emit('added', next)
    }
  }

  /** Lists a dir and refreshes every file in it and every file it no longer has, `window` at a time. */
  private async rescan (dir: number): Promise<void> {
    const found = pickDistfiles(await this.pool.scan(this.dirs[dir]!.path))
    if (this.closed) return
    const present = new Set(found.map((f) => f.name))
    const gone: string[] = []
    for (const t of this.files.values()) if (t.dir === dir && !present.has(t.file.name)) gone.push(t.file.name)
    // Files the index vouches for cost no I/O, so without a pause now and
    // then 20 000 of them would run as one long stretch of microtasks.
    let n = 0
    const paced = async <T>(item: T, fn: (item: T) => Promise<void>): Promise<void> => {
      if (++n % YIELD_EVERY === 0) await yieldToLoop()
      await fn(item)
    }
    await forEachBounded(gone, this.window, (name) => paced(name, (x) => this.refresh(dir, x)))
    await forEachBounded(found, this.window, (f) => paced(f, (x) => this.refresh(dir, x.name, x.stat)))
  }

  // --- watching ---

  private async tryWatch (dir: number): Promise<boolean> {
    const wd = this.dirs[dir]!
    if (!this.watchEnabled || this.closed) return false
    if (wd.watcher) return true
    const st = await lstat(wd.path, { bigint: true }).catch(() => null)
    if (!st?.isDirectory() || this.closed) return false
    try {
      // Not persistent: watching alone never keeps the process alive.
      const watcher = watch(wd.path, { persistent: false }, (_event, name) => this.onEvent(dir, name))
      watcher.on('error', (err) => {
        log('watching %s failed (%s); rescanning it every %d ms instead', wd.path, err.message, this.rescanIntervalMs)
        this.unwatch(dir)
        this.requestRescan(dir, 0)
      })
      wd.watcher = watcher
      wd.ident = `${st.dev}:${st.ino}`
      return true
    } catch (err) {
      log('cannot watch %s (%s); rescanning it every %d ms instead', wd.path, (err as Error).message, this.rescanIntervalMs)
      return false
    }
  }

  private unwatch (dir: number): void {
    const wd = this.dirs[dir]!
    wd.watcher?.close()
    wd.watcher = null
    wd.ident = null
  }

  private onEvent (dir: number, name: string | null): void {
    if (this.closed) return
    const wd = this.dirs[dir]!
    if (name === null) {
      this.requestRescan(dir, this.settleMs)
      return
    }
    // inotify reports the watched dir's own removal under its basename.
    if (name === basename(wd.path)) void this.checkDir(dir)
    if (!isDistfileName(name)) return
    const path = join(wd.path, name)
    // An event is news: a file that could not be read (say a chmod since) gets another try.
    this.failed.delete(path)
    if (this.pending.has(path)) {
      this.pending.delete(path)
    } else if (this.pending.size >= this.maxPending) {
      // Bounded: a flood of new names is handled by one listing of the dir.
      if (!this.toRescan.has(dir)) log('%d names pending; rescanning %s instead', this.pending.size, wd.path)
      this.requestRescan(dir, this.settleMs)
      return
    }
    this.pending.set(path, { dir, name, due: Date.now() + this.settleMs })
    this.pump()
  }

  /** Starts the looks that are due, at most `window` at a time, and sets a timer for the next one. */
  private pump (): void {
    if (this.closed) return
    const now = Date.now()
    while (this.active < this.window) {
      const first = this.pending.entries().next()
      if (first.done === true || first.value[1].due > now) break
      const [path, p] = first.value
      this.pending.delete(path)
      this.active++
      void this.refresh(p.dir, p.name).finally(() => {
        this.active--
        this.pump()
      })
    }
    if (this.pumpTimer) clearTimeout(this.pumpTimer)
    this.pumpTimer = null
    const next = this.pending.values().next()
    if (next.done !== true && this.active < this.window) {
      // Referenced, unlike the watchers: once an event is in, its file gets indexed before the process may exit.
      this.pumpTimer = setTimeout(() => this.pump(), Math.max(0, next.value.due - now))
    }
  }

  /** A dir removed (or replaced) under its watcher: watch the new one, if any, and relist. */
  private async checkDir (dir: number): Promise<void> {
    const wd = this.dirs[dir]!
    const st = await lstat(wd.path, { bigint: true }).catch(() => null)
    if (this.closed || wd.watcher === null) return
    if (st?.isDirectory() && `${st.dev}:${st.ino}` === wd.ident) return
    log('%s was removed or replaced', wd.path)
    this.unwatch(dir)
    await this.tryWatch(dir)
    this.requestRescan(dir, 0)
  }

  private requestRescan (dir: number, delayMs: number): void {
    if (this.closed) return
    this.toRescan.add(dir)
    if (this.sweepTimer) return
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null
      void this.sweep()
    }, delayMs)
  }

  /** Rescans the dirs asked for, one at a time; a request made meanwhile is picked up by the same sweep. */
  private sweep (): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        for (let next = this.toRescan.values().next(); next.done !== true && !this.closed; next = this.toRescan.values().next()) {
          this.toRescan.delete(next.value)
          await this.rescan(next.value).catch((err: unknown) => log('rescanning %s failed: %s', this.dirs[next.value]!.path, (err as Error).message))
        }
      } finally {
        this.sweeping = null
      }
    })()
    return this.sweeping
  }

  /** The fallback: dirs without a watcher are watched again if they can be, else rescanned; watched dirs are checked to still be the same dir. */
  private periodic (): void {
    if (this.ticking) return
    this.ticking = true
    void (async () => {
      for (let d = 0; d < this.dirs.length && !this.closed; d++) {
        if (this.dirs[d]!.watcher) {
          await this.checkDir(d)
          continue
        }
        await this.tryWatch(d)
        this.toRescan.add(d)
      }
      if (!this.closed && this.toRescan.size > 0) await this.sweep()
    })().finally(() => { this.ticking = false })
  }

  // --- the persistent index ---

  private markDirty (): void {
    this.dirty = true
    if (this.stateDir === null || this.closed || this.saveTimer) return
    const delay = Math.max(SAVE_DELAY_MS, this.lastSave + SAVE_INTERVAL_MS - Date.now())
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null
      void this.save()
    }, delay)
    this.saveTimer.unref()
  }

  /** Writes the index, one save at a time. During open() the entries not yet looked at are kept as they were. */
  private save (): Promise<void> {
    const stateDir = this.stateDir
    if (stateDir === null) return this.saving
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return
      this.dirty = false
      this.lastSave = Date.now()
      const dirs = new Map<string, IndexDir>(this.dirs.map((d) => [d.path, new Map()]))
      for (const [dir, entries] of this.previous ?? []) {
        const out = dirs.get(dir)
        if (out) for (const [name, e] of entries) out.set(name, e)
      }
      for (const t of this.files.values()) {
        dirs.get(this.dirs[t.dir]!.path)!.set(t.file.name, { stat: t.stat, blake2b: t.file.blake2b, sha512: t.file.sha512 })
      }
      try {
        const bytes = await saveIndex(stateDir, dirs)
        log('saved the hash index: %d files, %d bytes, in %d ms', this.files.size, bytes, Date.now() - this.lastSave)
      } catch (err) {
        this.dirty = true
        log('cannot save the hash index in %s: %s', stateDir, (err as Error).message)
      }
    })
    return this.saving
  }
}
