/**
 * What the Manifests say about files: a name they list is fetched by their
 * digest, and a file whose name they list with other content is neither
 * advertised nor kept by `verify`. Loads the index of the configured repos
 * and keeps it current (a sync reloads it); `reload` tells what changed.
 */
import { EventEmitter } from 'node:events'
import { debugLogger, type FileEntry, type Logger } from '@distswarm/protocol'
import { ManifestIndex, watchRepos, type ManifestEntry, type ManifestWatcher } from '@distswarm/store'
import type { FileInfo } from './api.js'
import { findRepos } from './config.js'
import { AgentError } from './errors.js'
import { fileInfo } from './files.js'

/** Manifest problems logged at start, the first ones (status counts them all). */
const PROBLEMS_LOGGED = 10

export type PinnedEntry = ManifestEntry & { blake2b: string }

/** Whether a file (hex digests; '' for an unknown SHA512) is the one a Manifest entry describes. */
export function matchesManifest (e: ManifestEntry, f: FileInfo): boolean {
  return e.size === f.size &&
    (e.blake2b === null || e.blake2b === f.blake2b) &&
    (e.sha512 === null || f.sha512 === '' || e.sha512 === f.sha512)
}

/** The Manifest entries of the file's name in `index` when the file matches none of them; null when it matches one, or none exist. */
function conflictIn (index: ManifestIndex | null, file: FileEntry): ManifestEntry[] | null {
  const entries = index?.get(file.name) ?? []
  if (entries.length === 0) return null
  const info = fileInfo(file)
  return entries.some((e) => matchesManifest(e, info)) ? null : entries
}

export interface ManifestPolicyEvents {
  /** The index was reloaded; `agreedBefore` says whether a file agreed with the index it replaced. */
  reload: [{ agreedBefore: (file: FileEntry) => boolean }]
}

export class ManifestPolicy extends EventEmitter<ManifestPolicyEvents> {
  private readonly configured: string[] | null
  private readonly log: Logger
  private index: ManifestIndex | null = null
  private watcher: ManifestWatcher | null = null
  private stopped = false

  /** `repos`: the ebuild repos to read, or null for every repo under /var/db/repos. */
  constructor (repos: string[] | null, logger: Logger = debugLogger('distswarm:agent:manifest')) {
    super()
    this.configured = repos
    this.log = logger
  }

  /** Loads the Manifests and watches the repos. Idempotent. */
  async start (): Promise<void> {
    if (this.index !== null || this.stopped) return
    const repos = await findRepos(this.configured)
    if (repos.length === 0 || this.stopped) return
    const index = this.index = await ManifestIndex.load(repos)
    this.log.info('manifest.loaded', { distfiles: index.size, repos: repos.join(' '), skipped: index.problemCount || undefined })
    for (const p of index.problems.slice(0, PROBLEMS_LOGGED)) this.log.debug('manifest.problem', { file: p.file, line: p.line, why: p.reason })
    if (this.stopped) return
    this.watcher = watchRepos(index)
    this.watcher.on('reload', (next) => {
      const before = this.index
      this.index = next
      this.log.info('manifest.reloaded', { distfiles: next.size })
      this.emit('reload', { agreedBefore: (file) => conflictIn(before, file) === null })
    })
  }

  /** Stops watching. Idempotent. */
  stop (): void {
    this.stopped = true
    this.watcher?.stop()
    this.watcher = null
  }

  get summary (): { repos: string[], names: number, problems: number } {
    return { repos: [...(this.index?.repos ?? [])], names: this.index?.size ?? 0, problems: this.index?.problemCount ?? 0 }
  }

  /** Whether the quota may count the name as live: a Manifest lists it, or there are no Manifests to tell. */
  references (name: string): boolean {
    return this.index === null || this.index.has(name)
  }

  /** The Manifest entries of the file's name when the file matches none of them; null when it matches one, or none exist. */
  conflict (file: FileEntry): ManifestEntry[] | null {
    return conflictIn(this.index, file)
  }

  /** False for a file whose name a Manifest lists with other content: it must not pass for that entry. */
  agrees (file: FileEntry & { path?: string }): boolean {
    const ok = this.conflict(file) === null
    if (!ok) this.log.debug('manifest.not-advertised', { path: file.path ?? file.name, why: 'its hashes disagree with the Manifest entry of that name' })
    return ok
  }

  /**
   * The Manifest entry to fetch a name by: the only one with a BLAKE2B, or,
   * when repos disagree, the only one some box holds (`held`). Undefined
   * when no Manifest names it (then peers' names are all there is).
   */
  pin (name: string, held: (blake2b: string) => boolean): PinnedEntry | undefined {
    const entries = (this.index?.get(name) ?? []).filter((e): e is PinnedEntry => e.blake2b !== null)
    if (entries.length <= 1) return entries[0]
    const holding = entries.filter((e) => held(e.blake2b))
    if (holding.length > 1) throw AgentError.AMBIGUOUS(name, holding.map((e) => e.blake2b))
    return holding[0] ?? entries[0]
  }
}
