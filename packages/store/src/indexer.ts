/**
 * Brings the inventory in line with the disk: looks at one path (stat, then
 * the saved hash index, a hard link already known, or a hash in the worker
 * pool) or lists a whole dir. Knows nothing of fs events or timers.
 */
import { join } from 'node:path'
import { forEachBounded, toHex, type Logger } from '@distswarm/protocol'
import type { IndexDir } from './hashindex.js'
import type { Inventory } from './inventory.js'
import { LOOK_AGAIN, type HashPool } from './pool.js'
import { isDistfileName, pickDistfiles, sameStat, statFile, type StatKey } from './scan.js'

/** Times a file that changes while it is read is tried again before it is left to its next fs event. */
const HASH_ATTEMPTS = 3
/** Files looked at between two turns of the event loop during a rescan. */
const YIELD_EVERY = 256
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export interface IndexerInit {
  /** The store's dirs; a file's `dir` is its index here. */
  dirs: readonly string[]
  inventory: Inventory
  pool: HashPool
  /** Files hashed at once. */
  window: number
  /** True once the store is stopping: no new looks start. */
  stopped: () => boolean
  logger: Logger
}

export class Indexer {
  readonly dirs: readonly string[]
  /** Paths a commit is placing: the commit indexes them, with the digests it verified. */
  readonly committing = new Set<string>()
  /** The index file's entries while the store starts: what is found unchanged is taken from here, the rest is pruned. */
  previous: Map<string, IndexDir> | null = null
  private readonly inventory: Inventory
  private readonly pool: HashPool
  private readonly window: number
  private readonly stopped: () => boolean
  private readonly logger: Logger
  private readonly running = new Map<string, Promise<void>>()
  private readonly again = new Map<string, Promise<void>>()

  constructor (init: IndexerInit) {
    this.dirs = init.dirs
    this.inventory = init.inventory
    this.pool = init.pool
    this.window = init.window
    this.stopped = init.stopped
    this.logger = init.logger
  }

  /**
   * Looks at one path and brings the inventory in line with it. At most one
   * look per path runs at a time; calls meanwhile share one follow-up look.
   * Never rejects.
   */
  refresh (dir: number, name: string, listed?: StatKey): Promise<void> {
    const path = join(this.dirs[dir]!, name)
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
      if ((err as { code?: string }).code !== 'ERR_STORE_CLOSED') this.logger.warn('file.index-failed', { path, error: (err as Error).message })
    }).finally(() => this.running.delete(path))
    this.running.set(path, look)
    return look
  }

  /** Resolves once every look in progress has. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.running.values(), ...this.again.values()])
  }

  /** Lists a dir and refreshes every file in it and every file it no longer has, `window` at a time. */
  async rescan (dir: number): Promise<void> {
    const found = pickDistfiles(await this.pool.scan(this.dirs[dir]!))
    if (this.stopped()) return
    const present = new Set(found.map((f) => f.name))
    const gone: string[] = []
    for (const t of this.inventory.inDir(dir)) if (!present.has(t.file.name)) gone.push(t.file.name)
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

  /** Re-hashes every copy of this digest whatever its stat says (see Store.recheck); resolves to how many had changed. */
  async recheck (hex: string): Promise<number> {
    let changed = 0
    for (const path of [...this.inventory.holdersOf(hex)]) {
      const t = this.inventory.tracked(path)
      if (!t || this.stopped()) continue
      const out = await this.pool.hash(path, { dev: t.stat.dev, ino: t.stat.ino })
      if (out.ok && toHex(out.blake2b) === hex) continue
      changed++
      this.logger.warn('file.changed-in-place', { path })
      if (out.ok) this.inventory.put(t.dir, t.file.name, path, out, true)
      else this.inventory.forget(path)
    }
    return changed
  }

  /** What the hash index file should hold: every tracked file, plus the saved entries not yet looked at while starting. */
  snapshot (): Map<string, IndexDir> {
    const dirs = new Map<string, IndexDir>(this.dirs.map((d) => [d, new Map()]))
    for (const [dir, entries] of this.previous ?? []) {
      const out = dirs.get(dir)
      if (out) for (const [name, e] of entries) out.set(name, e)
    }
    for (const t of this.inventory.all()) {
      dirs.get(this.dirs[t.dir]!)!.set(t.file.name, { stat: t.stat, blake2b: t.file.blake2b, sha512: t.file.sha512 })
    }
    return dirs
  }

  /** Saved entries of files no start-up look found: they are gone. */
  countPruned (): number {
    let pruned = 0
    for (const [dir, entries] of this.previous ?? []) {
      for (const name of entries.keys()) if (!this.inventory.tracked(join(dir, name))) pruned++
    }
    return pruned
  }

  private async examine (dir: number, name: string, path: string, listed: StatKey | undefined): Promise<void> {
    const inv = this.inventory
    let stat: StatKey | null | undefined = listed
    for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
      if (this.stopped()) return
      stat ??= isDistfileName(name) ? await statFile(path) : null
      if (stat === null) {
        inv.forget(path)
        return
      }
      const known = inv.tracked(path)
      if (known && sameStat(known.stat, stat)) return
      if (this.committing.has(path)) return
      const prev = this.previous?.get(this.dirs[dir]!)?.get(name)
      if (prev && sameStat(prev.stat, stat)) {
        inv.put(dir, name, path, { size: Number(stat.size), blake2b: prev.blake2b, sha512: prev.sha512, stat }, false)
        return
      }
      const linked = inv.linked(stat)
      if (linked && sameStat(linked.stat, stat)) {
        inv.put(dir, name, path, { size: Number(stat.size), blake2b: linked.file.blake2b, sha512: linked.file.sha512, stat }, true)
        return
      }
      const failedAt = inv.failedAt(path)
      if (failedAt && sameStat(failedAt, stat)) return
      const out = await this.pool.hash(path, { dev: stat.dev, ino: stat.ino })
      if (out.ok) {
        inv.put(dir, name, path, out, true)
        return
      }
      if (!LOOK_AGAIN.has(out.code)) {
        this.logger.warn('file.unreadable', { path, code: out.code, error: out.message })
        inv.forget(path)
        inv.setFailed(path, stat)
        return
      }
      stat = undefined
    }
    if (this.stopped()) return
    // Its next fs event (or rescan) brings it back once it holds still.
    this.logger.debug('file.unsettled', { path, note: 'keeps changing; left out for now' })
    inv.forget(path)
  }
}
