/**
 * The cache dir's quota: over it, files leave the cache dir (see
 * planEviction for the order) after each fetch and every GC_INTERVAL_MS;
 * `distswarm gc` runs it on demand or shows what it would take. Runs one at
 * a time; files of fetches in flight are never chosen.
 */
import { debugLogger, toHex, type Logger } from '@distswarm/protocol'
import { planEviction, type EvictionPlan, type Store } from '@distswarm/store'
import type { GcResult } from './api.js'

/**
 * How often the cache quota is checked besides after each fetch (it catches a
 * quota lowered across a restart). Not at start: peers' inventories, which
 * decide what may go, are not in yet.
 */
export const GC_INTERVAL_MS = 5 * 60_000

export interface QuotaInit {
  store: Pick<Store, 'cacheFiles' | 'evict'>
  cacheDir: string
  /** the quota in bytes, or null for none */
  maxBytes: number | null
  /** How many connected peers hold this hex digest. */
  holders: (blake2b: string) => number
  /** Whether a Manifest lists the name (or there are none to tell). */
  referenced: (name: string) => boolean
  /** Whether a fetch of this hex digest is under way. */
  pinned: (blake2b: string) => boolean
  logger?: Logger
}

export class Quota {
  private readonly init: QuotaInit
  private readonly log: Logger
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  /** Quota runs, one at a time. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor (init: QuotaInit) {
    this.init = init
    this.log = init.logger ?? debugLogger('distswarm:agent:quota')
  }

  /** Checks the quota every GC_INTERVAL_MS from now, when there is one. Idempotent. */
  start (): void {
    if (this.timer !== null || this.stopped || this.init.maxBytes === null) return
    this.timer = setInterval(() => { void this.enforce() }, GC_INTERVAL_MS)
    this.timer.unref()
  }

  /** Stops the timer and waits for a run under way. Idempotent. */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.queue
  }

  /** Applies the quota now, or with `dryRun` only says what it would remove. */
  run (dryRun: boolean): Promise<GcResult> {
    const run = this.queue.then(() => this.collect(dryRun))
    this.queue = run.catch(() => {})
    return run
  }

  /** After a fetch and every GC_INTERVAL_MS: evicts when over the quota; never throws (a failed run is a warning). */
  async enforce (): Promise<void> {
    if (this.init.maxBytes === null || this.stopped) return
    try {
      const r = await this.run(false)
      if (r.files.length > 0) {
        this.log.info('quota.evicted', { overBy: r.overBy, files: r.files.filter((f) => f.removed).length, bytesBefore: r.bytesBefore, bytesAfter: r.bytesAfter })
      }
    } catch (err) {
      this.log.warn('quota.failed', { why: (err as Error).message })
    }
  }

  private async collect (dryRun: boolean): Promise<GcResult> {
    const plan = this.plan()
    const removed = new Set(dryRun ? [] : await this.init.store.evict(plan.chosen.map((c) => c.path)))
    const gone = plan.chosen.filter((c) => dryRun || removed.has(c.path))
    return {
      cacheDir: this.init.cacheDir,
      dryRun,
      maxBytes: plan.maxBytes,
      bytesBefore: plan.bytesBefore,
      filesBefore: plan.files,
      bytesAfter: plan.bytesBefore - gone.reduce((n, c) => n + c.size, 0),
      filesAfter: plan.files - gone.length,
      overBy: plan.overBy,
      files: plan.chosen.map((c) => ({
        name: c.name,
        size: c.size,
        blake2b: c.blake2b,
        path: c.path,
        reason: c.reason,
        lastUsed: new Date(c.usedAt).toISOString(),
        peers: c.peers,
        removed: removed.has(c.path)
      }))
    }
  }

  /** What the quota would take now: every cache file, weighed by the Manifests and by what connected peers hold. */
  private plan (): EvictionPlan & { files: number } {
    const candidates = this.init.store.cacheFiles().map((f) => {
      const hex = toHex(f.blake2b)
      return {
        path: f.path,
        name: f.name,
        size: f.size,
        blake2b: hex,
        usedAt: f.usedAt,
        // Without Manifests nothing tells a stale name from a live one.
        referenced: this.init.referenced(f.name),
        peers: this.init.holders(hex),
        pinned: this.init.pinned(hex)
      }
    })
    return { ...planEviction(candidates, this.init.maxBytes), files: candidates.length }
  }
}
