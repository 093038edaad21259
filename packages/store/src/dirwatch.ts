/**
 * Keeps the store's dirs looked at: fs.watch events, settled per name and
 * handed to the Indexer a window at a time; a rescan when events overflow,
 * when a dir is removed or replaced, or, for a dir that cannot be watched,
 * every rescanIntervalMs.
 */
import { watch, type FSWatcher } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Logger } from '@distswarm/protocol'
import type { Indexer } from './indexer.js'
import type { Inventory } from './inventory.js'
import { isDistfileName } from './scan.js'

export interface DirWatcherInit {
  indexer: Indexer
  inventory: Inventory
  /** Watch with fs.watch; when false every dir is rescanned every rescanIntervalMs. */
  watch: boolean
  settleMs: number
  rescanIntervalMs: number
  maxPending: number
  /** Looks at once. */
  window: number
  logger: Logger
}

interface WatchedDir {
  path: string
  watcher: FSWatcher | null
  /** dev:ino of the dir when the watcher was set up: a dir removed and made again needs a new watcher. */
  ident: string | null
  /** A failure to watch it was a warning already: the periodic retries are no news. */
  warned: boolean
}

interface Pending {
  dir: number
  name: string
  due: number
}

export class DirWatcher {
  private readonly indexer: Indexer
  private readonly inventory: Inventory
  private readonly dirs: WatchedDir[]
  private readonly enabled: boolean
  private readonly settleMs: number
  private readonly rescanIntervalMs: number
  private readonly maxPending: number
  private readonly window: number
  private readonly logger: Logger
  /** Names with fs events, in order of their last event, so the first one is always the next due. */
  private readonly pending = new Map<string, Pending>()
  private readonly toRescan = new Set<number>()
  private active = 0
  private sweeping: Promise<void> | null = null
  private ticking: Promise<void> | null = null
  private pumpTimer: NodeJS.Timeout | null = null
  private sweepTimer: NodeJS.Timeout | null = null
  private rescanTimer: NodeJS.Timeout | null = null
  private stopped = false

  constructor (init: DirWatcherInit) {
    // Taken as they are: the Store checked them.
    ;({
      indexer: this.indexer, inventory: this.inventory, watch: this.enabled, settleMs: this.settleMs,
      rescanIntervalMs: this.rescanIntervalMs, maxPending: this.maxPending, window: this.window, logger: this.logger
    } = init)
    this.dirs = init.indexer.dirs.map((path) => ({ path, watcher: null, ident: null, warned: false }))
  }

  /** Dirs watched by fs.watch now. */
  get watched (): number {
    return this.dirs.filter((d) => d.watcher !== null).length
  }

  /** Sets up the watchers; called before the first listing, so a file that lands between the two is not missed. */
  async watch (): Promise<void> {
    for (let d = 0; d < this.dirs.length; d++) await this.tryWatch(d)
  }

  /** Starts the periodic fallback (rescans of unwatched dirs, checks of watched ones). Idempotent. */
  startPeriodic (): void {
    if (this.stopped || this.rescanTimer) return
    this.rescanTimer = setInterval(() => this.periodic(), this.rescanIntervalMs)
    this.rescanTimer.unref()
  }

  /** Stops watching and every timer; resolves once a sweep or check in progress has ended. Idempotent. */
  async stop (): Promise<void> {
    this.stopped = true
    for (const t of [this.pumpTimer, this.sweepTimer]) if (t) clearTimeout(t)
    if (this.rescanTimer) clearInterval(this.rescanTimer)
    this.pumpTimer = this.sweepTimer = this.rescanTimer = null
    for (let d = 0; d < this.dirs.length; d++) this.unwatch(d)
    this.pending.clear()
    await Promise.allSettled([this.sweeping, this.ticking])
  }

  private async tryWatch (dir: number): Promise<boolean> {
    const wd = this.dirs[dir]!
    if (!this.enabled || this.stopped) return false
    if (wd.watcher) return true
    const st = await lstat(wd.path, { bigint: true }).catch(() => null)
    if (!st?.isDirectory() || this.stopped) return false
    try {
      // Not persistent: watching alone never keeps the process alive.
      const watcher = watch(wd.path, { persistent: false }, (_event, name) => this.onEvent(dir, name))
      watcher.on('error', (err) => {
        this.logger.warn('watch.failed', { dir: wd.path, error: err.message, rescanEveryMs: this.rescanIntervalMs })
        this.unwatch(dir)
        this.requestRescan(dir, 0)
      })
      wd.watcher = watcher
      wd.ident = `${st.dev}:${st.ino}`
      return true
    } catch (err) {
      const fields = { dir: wd.path, error: (err as Error).message, rescanEveryMs: this.rescanIntervalMs }
      if (wd.warned) this.logger.debug('watch.failed', fields)
      else this.logger.warn('watch.failed', fields)
      wd.warned = true
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
    if (this.stopped) return
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
    this.inventory.clearFailed(path)
    if (this.pending.has(path)) {
      this.pending.delete(path)
    } else if (this.pending.size >= this.maxPending) {
      // Bounded: a flood of new names is handled by one listing of the dir.
      if (!this.toRescan.has(dir)) this.logger.debug('watch.overflow', { dir: wd.path, reason: `${this.pending.size} names pending; rescanning the dir instead` })
      this.requestRescan(dir, this.settleMs)
      return
    }
    this.pending.set(path, { dir, name, due: Date.now() + this.settleMs })
    this.pump()
  }

  /** Starts the looks that are due, at most `window` at a time, and sets a timer for the next one. */
  private pump (): void {
    if (this.stopped) return
    const now = Date.now()
    while (this.active < this.window) {
      const first = this.pending.entries().next()
      if (first.done === true || first.value[1].due > now) break
      const [path, p] = first.value
      this.pending.delete(path)
      this.active++
      void this.indexer.refresh(p.dir, p.name).finally(() => {
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
    if (this.stopped || wd.watcher === null) return
    if (st?.isDirectory() && `${st.dev}:${st.ino}` === wd.ident) return
    this.logger.info('watch.dir-replaced', { dir: wd.path })
    this.unwatch(dir)
    await this.tryWatch(dir)
    this.requestRescan(dir, 0)
  }

  private requestRescan (dir: number, delayMs: number): void {
    if (this.stopped) return
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
        for (let next = this.toRescan.values().next(); next.done !== true && !this.stopped; next = this.toRescan.values().next()) {
          this.toRescan.delete(next.value)
          await this.indexer.rescan(next.value).catch((err: unknown) => {
            if ((err as { code?: string }).code !== 'ERR_STORE_CLOSED') this.logger.warn('watch.rescan-failed', { dir: this.dirs[next.value]!.path, error: (err as Error).message })
          })
        }
      } finally {
        this.sweeping = null
      }
    })()
    return this.sweeping
  }

  /** The fallback: dirs without a watcher are watched again if they can be, else rescanned; watched dirs are checked to still be the same dir. */
  private periodic (): void {
    this.ticking ??= (async () => {
      for (let d = 0; d < this.dirs.length && !this.stopped; d++) {
        if (this.dirs[d]!.watcher) {
          await this.checkDir(d)
          continue
        }
        await this.tryWatch(d)
        this.toRescan.add(d)
      }
      if (!this.stopped && this.toRescan.size > 0) await this.sweep()
    })().finally(() => { this.ticking = null })
  }
}
