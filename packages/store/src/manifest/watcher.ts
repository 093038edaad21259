import { EventEmitter } from 'node:events'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { StoreError } from '../errors.js'
import { DEFAULT_CONCURRENCY, ManifestIndex } from './manifest-index.js'
import { fingerprintNow, sentinelOf, type RepoSnapshot } from './walk.js'

export const DEFAULT_INTERVAL_MS = 60_000
export const DEFAULT_STATS_PER_CHECK = 2000

export interface ManifestWatchOptions {
  /** Time between checks. Default 60 s. */
  intervalMs?: number
  /** Package Manifests stat'ed per check, beyond the sync sentinels. Default 2000. */
  statsPerCheck?: number
  /** A check that fails is a `warn` here. Default: debug namespace distswarm:store:manifest. */
  logger?: Logger
}

export interface ManifestWatcherEvents {
  reload: [ManifestIndex]
}

/**
 * Keeps a ManifestIndex current; see watchRepos. start() begins the checks
 * every intervalMs, stop() ends them and drops a reload in progress; both
 * idempotent, and a stopped watcher stays stopped. A listener that throws
 * makes check() reject (or, from the timer, an unhandled rejection), as with
 * any event emitter.
 */
export class ManifestWatcher extends EventEmitter<ManifestWatcherEvents> {
  private current: ManifestIndex
  private readonly intervalMs: number
  private readonly statsPerCheck: number
  private readonly logger: Logger
  private readonly abort = new AbortController()
  private timer: NodeJS.Timeout | null = null
  private started = false
  private running: Promise<boolean> | null = null
  private cursor = 0

  /** Checks the options; starts nothing. */
  constructor (index: ManifestIndex, opts: ManifestWatchOptions = {}) {
    super()
    for (const [option, min] of [['intervalMs', 1], ['statsPerCheck', 1]] as const) {
      const v = opts[option]
      if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) {
        throw StoreError.INVALID_OPTION(option, `must be an integer of at least ${min}, got ${String(v)}`)
      }
    }
    this.current = index
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS
    this.statsPerCheck = opts.statsPerCheck ?? DEFAULT_STATS_PER_CHECK
    this.logger = opts.logger ?? debugLogger('distswarm:store:manifest')
  }

  /** The newest index. */
  get index (): ManifestIndex {
    return this.current
  }

  get stopped (): boolean {
    return this.abort.signal.aborted
  }

  /** Starts checking every intervalMs. Idempotent. */
  start (): void {
    if (this.started || this.stopped) return
    this.started = true
    this.schedule()
  }

  /** Checks now (the timer does it every intervalMs); resolves true when the index was reloaded. */
  check (): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false)
    this.running ??= this.run().finally(() => { this.running = null })
    return this.running
  }

  /** Stops the timer and drops a reload in progress. Idempotent. */
  stop (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.abort.abort()
  }

  private schedule (): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.check().finally(() => this.schedule())
    }, this.intervalMs)
    this.timer.unref()
  }

  private async run (): Promise<boolean> {
    const old = this.current
    const { opts, snapshot } = old.origin
    let next: ManifestIndex
    try {
      const why = await this.changed(snapshot, opts.concurrency ?? DEFAULT_CONCURRENCY)
      if (why === null || this.stopped) return false
      this.logger.info('manifests.changed', { why })
      next = await ManifestIndex.load(old.repos, { ...opts, signal: this.abort.signal })
    } catch (err) {
      if (!this.stopped) this.logger.warn('manifests.check-failed', { error: (err as Error).message })
      return false
    }
    if (this.stopped) return false
    this.current = next
    this.cursor = 0
    this.emit('reload', next)
    return true
  }

  /** Why the repos differ from the snapshot, or null when no difference was seen. */
  private async changed (snapshot: RepoSnapshot, concurrency: number): Promise<string | null> {
    const repos = this.current.repos
    const sentinels = await Promise.all(repos.map(sentinelOf))
    const repo = sentinels.findIndex((s, i) => s !== snapshot.sentinels[i])
    if (repo !== -1) return `${repos[repo]} was synced`
    const { categories } = snapshot
    let budget = this.statsPerCheck
    for (let n = 0; n < categories.length && budget > 0 && !this.stopped; n++) {
      const category = categories[this.cursor % categories.length]!
      this.cursor = (this.cursor + 1) % categories.length
      const now = await fingerprintNow(category.path, concurrency)
      if (now === null) {
        if (category.fingerprint !== 'E') return `${category.path} is no longer readable`
        continue
      }
      if (now.fingerprint !== category.fingerprint) return `${category.path} changed`
      budget -= now.packages + 1
    }
    return null
  }
}

/**
 * Reloads the index when a repo changes: a started ManifestWatcher. Each
 * check stats a few sync sentinels per repo (the repo dir, its Manifest,
 * metadata/timestamp.chk and timestamp.commit), which a sync always changes,
 * then the Manifests of some categories in turn, at most about
 * `statsPerCheck` of them, so that a hand edit in an overlay is noticed too
 * within a few checks. A reload builds a new index in the background (reads
 * are async) and replaces the current one only when done; a change during
 * the reload shows at the next check.
 */
export function watchRepos (index: ManifestIndex, opts?: ManifestWatchOptions): ManifestWatcher {
  const watcher = new ManifestWatcher(index, opts)
  watcher.start()
  return watcher
}
