import { debugLogger, type Logger } from '@distswarm/protocol'
import { StoreError } from '../errors.js'
import { combine, detach, ProblemLog, type ManifestEntry, type ManifestProblem } from './parse.js'
import { Table } from './table.js'
import { walkRepos, type RepoSnapshot } from './walk.js'

export const DEFAULT_CONCURRENCY = 32
export const DEFAULT_MAX_PROBLEMS = 1000
export const DEFAULT_MAX_MANIFEST_BYTES = 32 * 1024 * 1024

export interface ManifestLoadOptions {
  /** Files read at once. Default 32. */
  concurrency?: number
  /** Problems kept; the rest are only counted (problemCount). Default 1000. */
  maxProblems?: number
  /** Larger Manifests are skipped as a problem. Default 32 MiB; the largest in ::gentoo are a few MiB. */
  maxManifestBytes?: number
  /** Aborts the load; it then rejects with the signal's reason. */
  signal?: AbortSignal
  /** Default: debug namespace distswarm:store:manifest. */
  logger?: Logger
}

/** What a load was asked and saw: a watcher reloads with the same options and compares with the snapshot. */
export interface ManifestOrigin {
  opts: Omit<ManifestLoadOptions, 'signal'>
  snapshot: RepoSnapshot
}

function checkLoadOptions (opts: ManifestLoadOptions): void {
  for (const [option, min] of [['concurrency', 1], ['maxProblems', 0], ['maxManifestBytes', 0]] as const) {
    const v = opts[option]
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) {
      throw StoreError.INVALID_OPTION(option, `must be an integer of at least ${min}, got ${String(v)}`)
    }
  }
}

/**
 * The distfiles that the Manifests of some ebuild repos list, by name.
 * Identical entries (a tarball shared by several packages) are kept once;
 * a name has several entries only when they cannot be the same file, as
 * when two overlays list different content under one name.
 */
export class ManifestIndex {
  readonly repos: readonly string[]
  /** The first problems (see ManifestLoadOptions.maxProblems). */
  readonly problems: readonly ManifestProblem[]
  /** All problems, kept or not. */
  readonly problemCount: number
  /** Names with more than one entry. */
  readonly conflicts: number
  /** @internal What the load saw, for a ManifestWatcher. */
  readonly origin: ManifestOrigin
  // A slot number, or several for a name with conflicting entries.
  private readonly slots: Map<string, number | number[]>
  private readonly table: Table

  private constructor (repos: readonly string[], slots: Map<string, number | number[]>, table: Table, problems: ProblemLog, conflicts: number, origin: ManifestOrigin) {
    this.repos = repos
    this.slots = slots
    this.table = table
    this.problems = problems.kept
    this.problemCount = problems.count
    this.conflicts = conflicts
    this.origin = origin
  }

  /**
   * Reads `<repo>/<category>/<package>/Manifest` of each repo. Never fails on
   * the repos' content: a missing repo, an unreadable file or a bad line is
   * recorded in `problems` and skipped. Bad options: ERR_INVALID_OPTION.
   */
  static async load (repos: readonly string[], opts: ManifestLoadOptions = {}): Promise<ManifestIndex> {
    checkLoadOptions(opts)
    const started = Date.now()
    const { signal, ...kept } = opts
    const logger = opts.logger ?? debugLogger('distswarm:store:manifest')
    const problems = new ProblemLog(opts.maxProblems ?? DEFAULT_MAX_PROBLEMS)
    const table = new Table(1024)
    const slots = new Map<string, number | number[]>()
    let conflicts = 0
    let manifests = 0
    const add = (e: ManifestEntry): void => {
      const known = slots.get(e.name)
      if (known === undefined) {
        slots.set(detach(e.name), table.add(e))
        return
      }
      const list = typeof known === 'number' ? [known] : known
      for (const slot of list) {
        const merged = combine(table.get(slot, e.name), e)
        if (merged !== null) {
          table.set(slot, merged)
          return
        }
      }
      if (list.length === 1) conflicts++
      slots.set(e.name, [...list, table.add(e)])
    }
    const snapshot = await walkRepos(repos, {
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      maxManifestBytes: opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES,
      signal
    }, problems, (parsed) => {
      manifests++
      for (const e of parsed.entries) add(e)
      for (const pr of parsed.problems) problems.add(pr.file, pr.line, pr)
    })
    table.trim()
    const index = new ManifestIndex([...repos], slots, table, problems, conflicts, { opts: kept, snapshot })
    logger.info('manifests.loaded', {
      distfiles: index.size, conflicts, manifests, repos: repos.length, problems: problems.count, ms: Date.now() - started
    })
    return index
  }

  /** Distinct names. */
  get size (): number {
    return this.slots.size
  }

  has (name: string): boolean {
    return this.slots.has(name)
  }

  /** The entries for a name: none, usually one, several only for a conflict (in repo order). Fresh objects. */
  get (name: string): ManifestEntry[] {
    const known = this.slots.get(name)
    if (known === undefined) return []
    if (typeof known === 'number') return [this.table.get(known, name)]
    return known.map((slot) => this.table.get(slot, name))
  }

  names (): IterableIterator<string> {
    return this.slots.keys()
  }
}
