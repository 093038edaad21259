/**
 * Walking ebuild repos: their categories and packages, each package's
 * Manifest read safely (no symlinks, no FIFOs, bounded size), and the stat
 * tokens and fingerprints the watcher compares to tell that a repo changed.
 */
import { createHash, type Hash } from 'node:crypto'
import { constants, type Stats } from 'node:fs'
import { lstat, open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { forEachBounded } from '@distswarm/protocol'
import { bad, parseManifest, type Bad, type ManifestParse, type ProblemLog } from './parse.js'

function errText (err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message
}

/**
 * Runs `fn` over `items`, at most `limit` at a time, and hands the results to
 * `apply` in item order, so a load gives the same index whatever order reads
 * finish in. `fn` must not throw.
 */
async function forEachOrdered<T, R> (
  items: readonly T[], limit: number, fn: (item: T) => Promise<R>, apply: (result: R, item: T) => void, signal?: AbortSignal
): Promise<void> {
  const waiting = new Map<number, R>()
  let applied = 0
  await forEachBounded(items.keys(), limit, async (i) => {
    signal?.throwIfAborted()
    waiting.set(i, await fn(items[i]!))
    for (; waiting.has(applied); applied++) {
      apply(waiting.get(applied) as R, items[applied]!)
      waiting.delete(applied)
    }
  })
  signal?.throwIfAborted()
}

// Top-level dirs of an ebuild repo that are no categories; dot-dirs are skipped too.
const NOT_CATEGORIES = new Set(['eclass', 'licenses', 'metadata', 'profiles', 'scripts'])

/** Sub-directories of `dir`, sorted; dot-dirs and symlinks (which could lead out of the repo) left out. */
async function listDirs (dir: string): Promise<string[]> {
  const dirents = await readdir(dir, { withFileTypes: true })
  return dirents.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort()
}

// What the watcher compares, per file: a sync that rewrites a file changes its
// ctime even when rsync restores the mtime, and a rename changes the inode.
function statToken (st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
}

/** Files a sync always touches: rsync rewrites the timestamps and the top Manifest, git the commit stamp. */
const SENTINELS = ['.', 'Manifest', 'metadata/timestamp.chk', 'metadata/timestamp.commit']

export async function sentinelOf (repo: string): Promise<string> {
  const tokens = await Promise.all(SENTINELS.map((p) => stat(join(repo, p)).then(statToken, () => '-')))
  return tokens.join(' ')
}

/** One package's line of its category's fingerprint: its name and its Manifest's stat token. */
function fingerprintLine (pkg: string, token: string): string {
  return `${pkg}\0${token}\n`
}

// O_NOFOLLOW: a Manifest that is a symlink could point anywhere on the box.
// O_NONBLOCK: opening a FIFO named Manifest must not hang the load.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)

interface ManifestRead {
  /** What manifestToken gives for the file: when the two differ on a file that did not change, every check reloads. */
  token: string
  text?: string
  problem?: Bad
}

async function readManifest (path: string, maxBytes: number): Promise<ManifestRead> {
  let fh
  try {
    fh = await open(path, OPEN_FLAGS)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { token: '-' }
    const token = await manifestToken(path)
    if (code === 'ELOOP' || code === 'EMLINK') return { token, problem: bad('ERR_NOT_A_FILE', 'a symbolic link; not followed') }
    return { token, problem: bad('ERR_UNREADABLE', `not readable: ${errText(err)}`) }
  }
  let token: string | null = null
  try {
    const st = await fh.stat()
    if (!st.isFile()) return { token: 'X', problem: bad('ERR_NOT_A_FILE', 'not a regular file') }
    token = statToken(st)
    if (st.size > maxBytes) return { token, problem: bad('ERR_TOO_LARGE', `larger than ${maxBytes} bytes; skipped`) }
    // One read of the size fstat gave: FileHandle.readFile costs another
    // fstat and a read to find the end, which makes a load half as fast.
    const buf = Buffer.allocUnsafe(st.size)
    let got = 0
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got)
      if (bytesRead === 0) break // it shrank since: a sync is under way, and the next check sees it
      got += bytesRead
    }
    return { token, text: buf.toString('utf8', 0, got) }
  } catch (err) {
    return { token: token ?? await manifestToken(path), problem: bad('ERR_UNREADABLE', `not readable: ${errText(err)}`) }
  } finally {
    await fh.close().catch(() => {})
  }
}

/** A Manifest's stat token, or '-' (none), 'L' (symlink), 'X' (not a file), 'E' (error). */
async function manifestToken (path: string): Promise<string> {
  try {
    const st = await lstat(path)
    if (st.isSymbolicLink()) return 'L'
    return st.isFile() ? statToken(st) : 'X'
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? '-' : 'E'
  }
}

export interface CategoryState {
  path: string
  /** sha1 of its packages' names and Manifest stat tokens; 'E' when it could not be listed. */
  fingerprint: string
}

/** What a walk saw, for the watcher to compare with. */
export interface RepoSnapshot {
  sentinels: string[]
  categories: CategoryState[]
}

export interface WalkOptions {
  concurrency: number
  maxManifestBytes: number
  signal?: AbortSignal
}

/**
 * Reads `<repo>/<category>/<package>/Manifest` of each repo and hands each
 * parsed Manifest to `onManifest`, in a fixed order (repo, category, package)
 * whatever order the reads finish in. What cannot be read goes to `problems`.
 */
export async function walkRepos (
  repos: readonly string[], opts: WalkOptions, problems: ProblemLog, onManifest: (parsed: ManifestParse) => void
): Promise<RepoSnapshot> {
  const { concurrency, signal } = opts
  // Taken first: a change during the walk then shows as a change afterwards.
  const sentinels = await Promise.all(repos.map(sentinelOf))
  const categories: Array<{ path: string, hash: Hash | null }> = []
  for (const repo of repos) {
    let names: string[]
    try {
      names = await listDirs(repo)
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
      problems.add(repo, 0, missing ? bad('ERR_NO_REPO', 'no such repository') : bad('ERR_UNREADABLE', `repository not readable: ${errText(err)}`))
      continue
    }
    for (const name of names) {
      if (!NOT_CATEGORIES.has(name)) categories.push({ path: join(repo, name), hash: null })
    }
  }

  const packages: Array<{ category: typeof categories[number], name: string }> = []
  await forEachOrdered(categories, concurrency, (c) => listDirs(c.path).catch((err: unknown) => err as Error), (listed, category) => {
    if (listed instanceof Error) {
      problems.add(category.path, 0, bad('ERR_UNREADABLE', `category not readable: ${errText(listed)}`))
      return
    }
    category.hash = createHash('sha1')
    for (const name of listed) packages.push({ category, name })
  }, signal)

  await forEachOrdered(packages, concurrency, async (p) => {
    const path = join(p.category.path, p.name, 'Manifest')
    const read = await readManifest(path, opts.maxManifestBytes)
    return { path, read, parsed: read.text === undefined ? null : parseManifest(read.text, path) }
  }, ({ path, read, parsed }, p) => {
    p.category.hash!.update(fingerprintLine(p.name, read.token))
    if (read.problem !== undefined) problems.add(path, 0, read.problem)
    if (parsed !== null) onManifest(parsed)
  }, signal)
  return { sentinels, categories: categories.map((c) => ({ path: c.path, fingerprint: c.hash?.digest('hex') ?? 'E' })) }
}

/** The fingerprint a walk would give a category now, from stat tokens only, and its package count; null when it cannot be listed. */
export async function fingerprintNow (category: string, concurrency: number): Promise<{ fingerprint: string, packages: number } | null> {
  let packages: string[]
  try {
    packages = await listDirs(category)
  } catch {
    return null
  }
  const hash = createHash('sha1')
  await forEachOrdered(packages, concurrency, async (p) => await manifestToken(join(category, p, 'Manifest')),
    (token, p) => hash.update(fingerprintLine(p, token)))
  return { fingerprint: hash.digest('hex'), packages: packages.length }
}
