import { createHash, type Hash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { constants, type Stats } from 'node:fs'
import { lstat, open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import createDebug from 'debug'
import { nameProblem } from '@distswarm/protocol'
import { forEachBounded } from './scan.js'

const log = createDebug('distswarm:store')

/** One distfile as a Manifest's DIST line describes it. */
export interface ManifestEntry {
  name: string
  size: number
  /** Lowercase hex (128 characters), or null when the entry has none. */
  blake2b: string | null
  sha512: string | null
  /** Other hashes (SHA256, WHIRLPOOL…) by name, lowercase hex; absent in the common case. */
  other?: Record<string, string>
}

/** What is wrong; stable, unlike `reason`, which is for people. */
export type ManifestProblemCode =
  /** DIST lines: */
  | 'ERR_TOO_FEW_FIELDS' | 'ERR_ODD_HASH_FIELDS' | 'ERR_INVALID_NAME' | 'ERR_BAD_SIZE' | 'ERR_BAD_HASH'
  | 'ERR_DUPLICATE_HASH'
  /** A second DIST line for a name, which cannot be the same file as the first. */
  | 'ERR_CONFLICT'
  /** Files and dirs (line 0): */
  | 'ERR_NO_REPO' | 'ERR_UNREADABLE' | 'ERR_NOT_A_FILE' | 'ERR_TOO_LARGE'

/** A line that was skipped (`line` is 1-based), or a file or dir that was not read (`line` is 0). */
export interface ManifestProblem {
  file: string
  line: number
  code: ManifestProblemCode
  reason: string
}

interface Bad {
  code: ManifestProblemCode
  reason: string
}

function bad (code: ManifestProblemCode, reason: string): Bad {
  return { code, reason }
}

export interface ManifestParse {
  entries: ManifestEntry[]
  problems: ManifestProblem[]
}

export interface ManifestLoadOptions {
  /** Files read at once. Default 32. */
  concurrency?: number
  /** Problems kept; the rest are only counted (problemCount). Default 1000. */
  maxProblems?: number
  /** Larger Manifests are skipped as a problem. Default 32 MiB; the largest in ::gentoo are a few MiB. */
  maxManifestBytes?: number
  /** Aborts the load; it then rejects with the signal's reason. */
  signal?: AbortSignal
}

// Hex digits per algorithm, for the algorithms Portage knows. Others: any even length.
const HEX_LENGTHS = new Map([
  ['BLAKE2B', 128], ['BLAKE2S', 64], ['MD5', 32], ['RMD160', 40], ['SHA1', 40], ['SHA256', 64],
  ['SHA512', 128], ['SHA3_256', 64], ['SHA3_512', 128], ['STREEBOG256', 64], ['STREEBOG512', 128],
  ['WHIRLPOOL', 128]
])
const HASH_NAME = /^[A-Z][A-Z0-9_]*$/
const HEX = /^[0-9a-fA-F]+$/
const DIGITS = /^[0-9]+$/
const SPACE = /\s+/

/** Quotes a token of a bad line for a problem, cut short: a line may be any length. */
function show (token: string): string {
  return JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token)
}

/** One line: an entry, a reason it is malformed, or null when it is no DIST line. */
function parseLine (raw: string): ManifestEntry | Bad | null {
  const line = raw.trim()
  if (!line.startsWith('DIST')) return null
  // Split on any whitespace, as Portage does (str.split()).
  const fields = line.split(SPACE)
  if (fields[0] !== 'DIST') return null
  if (fields.length < 5) return bad('ERR_TOO_FEW_FIELDS', `too few fields: expected DIST <name> <size> <hash> <hex>..., got ${fields.length}`)
  if ((fields.length - 3) % 2 !== 0) return bad('ERR_ODD_HASH_FIELDS', `odd number of hash fields (${fields.length - 3}): each hash name needs a value`)
  const name = fields[1]!
  const why = nameProblem(name)
  if (why !== null) return bad('ERR_INVALID_NAME', `invalid file name ${show(name)}: ${why}`)
  const sizeText = fields[2]!
  const size = Number(sizeText)
  if (!DIGITS.test(sizeText)) return bad('ERR_BAD_SIZE', `size ${show(sizeText)} is not a non-negative integer`)
  if (!Number.isSafeInteger(size)) return bad('ERR_BAD_SIZE', `size ${show(sizeText)} is too large`)
  const entry: ManifestEntry = { name, size, blake2b: null, sha512: null }
  const seen = new Set<string>()
  for (let i = 3; i < fields.length; i += 2) {
    const algo = fields[i]!
    const hex = fields[i + 1]!
    if (!HASH_NAME.test(algo)) return bad('ERR_BAD_HASH', `invalid hash name ${show(algo)}`)
    if (seen.has(algo)) return bad('ERR_DUPLICATE_HASH', `duplicate ${algo} hash`)
    seen.add(algo)
    const want = HEX_LENGTHS.get(algo)
    if (!HEX.test(hex)) return bad('ERR_BAD_HASH', `${algo} value ${show(hex)} is not hex`)
    if (want !== undefined ? hex.length !== want : hex.length % 2 !== 0) {
      return bad('ERR_BAD_HASH', `${algo} value has ${hex.length} hex digits, expected ${want ?? 'an even number'}`)
    }
    const value = hex.toLowerCase()
    if (algo === 'BLAKE2B') entry.blake2b = value
    else if (algo === 'SHA512') entry.sha512 = value
    else (entry.other ??= {})[algo] = value
  }
  return entry
}

/**
 * Parses one Manifest's text. Only DIST lines matter; other lines are
 * ignored. Never throws: a malformed DIST line becomes a problem and is
 * skipped. A name listed twice is merged when both lines describe the same
 * file; a later line that contradicts an earlier one is a problem.
 */
export function parseManifest (text: string, file: string): ManifestParse {
  const entries: ManifestEntry[] = []
  const problems: ManifestProblem[] = []
  const seen = new Map<string, { index: number, line: number }>()
  let start = 0 // a byte order mark goes with trim(), which parseLine does
  for (let line = 1; start <= text.length; line++) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const parsed = parseLine(text.slice(start, end))
    start = end + 1
    if (parsed === null) continue
    if ('code' in parsed) {
      problems.push({ file, line, ...parsed })
      continue
    }
    const first = seen.get(parsed.name)
    if (first === undefined) {
      seen.set(parsed.name, { index: entries.length, line })
      entries.push(parsed)
      continue
    }
    const merged = combine(entries[first.index]!, parsed)
    if (merged === null) problems.push({ file, line, code: 'ERR_CONFLICT', reason: `contradicts the DIST line ${first.line} for ${show(parsed.name)}` })
    else entries[first.index] = merged
  }
  return { entries, problems }
}

function hashesOf (e: ManifestEntry): Map<string, string> {
  const hashes = new Map<string, string>()
  if (e.blake2b !== null) hashes.set('BLAKE2B', e.blake2b)
  if (e.sha512 !== null) hashes.set('SHA512', e.sha512)
  for (const [algo, hex] of Object.entries(e.other ?? {})) hashes.set(algo, hex)
  return hashes
}

/**
 * The union of two entries for one name when they describe the same file:
 * same size, a hash in common and no common hash that differs. Null
 * otherwise: without a common hash nothing shows they are the same file.
 */
function combine (a: ManifestEntry, b: ManifestEntry): ManifestEntry | null {
  if (a.size !== b.size) return null
  const hashes = hashesOf(a)
  let common = 0
  for (const [algo, hex] of hashesOf(b)) {
    const mine = hashes.get(algo)
    if (mine === undefined) hashes.set(algo, hex)
    else if (mine !== hex) return null
    else common++
  }
  if (common === 0) return null
  const merged: ManifestEntry = { name: a.name, size: a.size, blake2b: null, sha512: null }
  for (const [algo, hex] of hashes) {
    if (algo === 'BLAKE2B') merged.blake2b = hex
    else if (algo === 'SHA512') merged.sha512 = hex
    else (merged.other ??= {})[algo] = hex
  }
  return merged
}

/**
 * A copy of a string that shares no memory with the text it was cut from:
 * V8 keeps a substring of 13+ characters as a view of its parent, so one kept
 * name would keep its whole Manifest alive. The UTF-8 round trip is exact for
 * text that was decoded from UTF-8, which Manifest text always is here.
 */
function detach (s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8')
}

const DIGEST_BYTES = 64
const SLOT_BYTES = 2 * DIGEST_BYTES
const HAS_BLAKE2B = 1
const HAS_SHA512 = 2

/**
 * Entries packed by slot: both digests as 128 bytes of one Buffer, the size in
 * a Float64Array, 137 bytes in all. An object with two 128-character hex
 * strings takes ~350 bytes of heap.
 */
class Table {
  count = 0
  private sizes: Float64Array
  private flags: Uint8Array
  private digests: Buffer
  private readonly other = new Map<number, Record<string, string>>()

  constructor (capacity: number) {
    this.sizes = new Float64Array(capacity)
    this.flags = new Uint8Array(capacity)
    this.digests = Buffer.alloc(capacity * SLOT_BYTES)
  }

  add (e: ManifestEntry): number {
    if (this.count === this.sizes.length) this.resize(Math.max(1024, this.count * 2))
    const slot = this.count++
    this.set(slot, e)
    return slot
  }

  set (slot: number, e: ManifestEntry): void {
    const at = slot * SLOT_BYTES
    this.sizes[slot] = e.size
    this.flags[slot] = (e.blake2b !== null ? HAS_BLAKE2B : 0) | (e.sha512 !== null ? HAS_SHA512 : 0)
    this.digests.fill(0, at, at + SLOT_BYTES)
    if (e.blake2b !== null) this.digests.write(e.blake2b, at, DIGEST_BYTES, 'hex')
    if (e.sha512 !== null) this.digests.write(e.sha512, at + DIGEST_BYTES, DIGEST_BYTES, 'hex')
    if (e.other === undefined) {
      this.other.delete(slot)
    } else {
      const other: Record<string, string> = {}
      for (const [algo, hex] of Object.entries(e.other)) other[detach(algo)] = detach(hex)
      this.other.set(slot, other)
    }
  }

  get (slot: number, name: string): ManifestEntry {
    const at = slot * SLOT_BYTES
    const flags = this.flags[slot]!
    const e: ManifestEntry = {
      name,
      size: this.sizes[slot]!,
      blake2b: (flags & HAS_BLAKE2B) !== 0 ? this.digests.toString('hex', at, at + DIGEST_BYTES) : null,
      sha512: (flags & HAS_SHA512) !== 0 ? this.digests.toString('hex', at + DIGEST_BYTES, at + SLOT_BYTES) : null
    }
    const other = this.other.get(slot)
    if (other !== undefined) e.other = { ...other }
    return e
  }

  /** Drops the unused capacity once loading is done. */
  trim (): void {
    if (this.count < this.sizes.length) this.resize(this.count)
  }

  private resize (capacity: number): void {
    const sizes = new Float64Array(capacity)
    sizes.set(this.sizes.subarray(0, this.count))
    const flags = new Uint8Array(capacity)
    flags.set(this.flags.subarray(0, this.count))
    const digests = Buffer.alloc(capacity * SLOT_BYTES)
    this.digests.copy(digests, 0, 0, this.count * SLOT_BYTES)
    this.sizes = sizes
    this.flags = flags
    this.digests = digests
  }
}

class ProblemLog {
  readonly kept: ManifestProblem[] = []
  count = 0

  constructor (private readonly max: number) {}

  add (file: string, line: number, { code, reason }: Bad): void {
    this.count++
    if (this.kept.length < this.max) this.kept.push({ file, line, code, reason: detach(reason) })
  }
}

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

async function sentinelOf (repo: string): Promise<string> {
  const tokens = await Promise.all(SENTINELS.map((p) => stat(join(repo, p)).then(statToken, () => '-')))
  return tokens.join(' ')
}

/** Per category, a digest of its package dirs and their Manifests' stat tokens; see watchRepos. */
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

interface CategoryState {
  path: string
  fingerprint: string
}

/** What a load saw, for the watcher to compare with; kept out of the public API. */
interface Snapshot {
  opts: Omit<ManifestLoadOptions, 'signal'>
  sentinels: string[]
  categories: CategoryState[]
}

const snapshots = new WeakMap<ManifestIndex, Snapshot>()

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
  // A slot number, or several for a name with conflicting entries.
  private readonly slots: Map<string, number | number[]>
  private readonly table: Table

  private constructor (repos: readonly string[], slots: Map<string, number | number[]>, table: Table, problems: ProblemLog, conflicts: number) {
    this.repos = repos
    this.slots = slots
    this.table = table
    this.problems = problems.kept
    this.problemCount = problems.count
    this.conflicts = conflicts
  }

  /**
   * Reads `<repo>/<category>/<package>/Manifest` of each repo. Never fails on
   * the repos' content: a missing repo, an unreadable file or a bad line is
   * recorded in `problems` and skipped.
   */
  static async load (repos: readonly string[], opts: ManifestLoadOptions = {}): Promise<ManifestIndex> {
    const started = Date.now()
    const { signal, ...kept } = opts
    const concurrency = opts.concurrency ?? 32
    const maxBytes = opts.maxManifestBytes ?? 32 * 1024 * 1024
    const problems = new ProblemLog(opts.maxProblems ?? 1000)
    // Taken first: a change during the load then shows as a change afterwards.
    const sentinels = await Promise.all(repos.map(sentinelOf))

    const categories: Array<CategoryState & { hash: Hash | null }> = []
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
        if (!NOT_CATEGORIES.has(name)) categories.push({ path: join(repo, name), fingerprint: 'E', hash: null })
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

    await forEachOrdered(packages, concurrency, async (p) => {
      const path = join(p.category.path, p.name, 'Manifest')
      const read = await readManifest(path, maxBytes)
      return { path, read, parsed: read.text === undefined ? null : parseManifest(read.text, path) }
    }, ({ path, read, parsed }, p) => {
      p.category.hash!.update(fingerprintLine(p.name, read.token))
      if (read.problem !== undefined) problems.add(path, 0, read.problem)
      if (parsed === null) return
      manifests++
      for (const e of parsed.entries) add(e)
      for (const pr of parsed.problems) problems.add(pr.file, pr.line, pr)
    }, signal)

    table.trim()
    const index = new ManifestIndex([...repos], slots, table, problems, conflicts)
    snapshots.set(index, {
      opts: kept,
      sentinels,
      categories: categories.map((c) => ({ path: c.path, fingerprint: c.hash?.digest('hex') ?? 'E' }))
    })
    log('indexed %d distfiles (%d conflicting) from %d Manifests in %d repos in %d ms; %d problems',
      index.size, conflicts, manifests, repos.length, Date.now() - started, problems.count)
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

export interface ManifestWatchOptions {
  /** Time between checks. Default 60 s. */
  intervalMs?: number
  /** Package Manifests stat'ed per check, beyond the sync sentinels. Default 2000. */
  statsPerCheck?: number
}

export interface ManifestWatcherEvents {
  reload: [ManifestIndex]
}

/**
 * Keeps a ManifestIndex current; see watchRepos. A listener that throws makes
 * check() reject (or, from the timer, an unhandled rejection), as with any
 * event emitter.
 */
export class ManifestWatcher extends EventEmitter<ManifestWatcherEvents> {
  private current: ManifestIndex
  private readonly intervalMs: number
  private readonly statsPerCheck: number
  private readonly abort = new AbortController()
  private timer: NodeJS.Timeout | null = null
  private running: Promise<boolean> | null = null
  private cursor = 0

  constructor (index: ManifestIndex, opts: ManifestWatchOptions = {}) {
    super()
    this.current = index
    this.intervalMs = opts.intervalMs ?? 60_000
    this.statsPerCheck = opts.statsPerCheck ?? 2000
    this.schedule()
  }

  /** The newest index. */
  get index (): ManifestIndex {
    return this.current
  }

  get closed (): boolean {
    return this.abort.signal.aborted
  }

  /** Checks now (the timer does it every intervalMs); resolves true when the index was reloaded. */
  check (): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    this.running ??= this.run().finally(() => { this.running = null })
    return this.running
  }

  /** Stops the timer and drops a reload in progress. Idempotent. */
  close (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.abort.abort()
  }

  private schedule (): void {
    if (this.closed) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.check().finally(() => this.schedule())
    }, this.intervalMs)
    this.timer.unref()
  }

  private async run (): Promise<boolean> {
    const old = this.current
    const snapshot = snapshots.get(old)!
    let next: ManifestIndex
    try {
      const why = await this.changed(snapshot)
      if (why === null || this.closed) return false
      log('reloading Manifests: %s', why)
      next = await ManifestIndex.load(old.repos, { ...snapshot.opts, signal: this.abort.signal })
    } catch (err) {
      if (!this.closed) log('Manifest check failed: %s', (err as Error).message)
      return false
    }
    if (this.closed) return false
    this.current = next
    this.cursor = 0
    this.emit('reload', next)
    return true
  }

  /** Why the repos differ from the snapshot, or null when no difference was seen. */
  private async changed (snapshot: Snapshot): Promise<string | null> {
    const repos = this.current.repos
    const sentinels = await Promise.all(repos.map(sentinelOf))
    const repo = sentinels.findIndex((s, i) => s !== snapshot.sentinels[i])
    if (repo !== -1) return `${repos[repo]} was synced`
    const { categories } = snapshot
    const concurrency = snapshot.opts.concurrency ?? 32
    let budget = this.statsPerCheck
    for (let n = 0; n < categories.length && budget > 0 && !this.closed; n++) {
      const category = categories[this.cursor % categories.length]!
      this.cursor = (this.cursor + 1) % categories.length
      let packages: string[]
      try {
        packages = await listDirs(category.path)
      } catch {
        if (category.fingerprint !== 'E') return `${category.path} is no longer readable`
        continue
      }
      const hash = createHash('sha1')
      await forEachOrdered(packages, concurrency, async (p) => await manifestToken(join(category.path, p, 'Manifest')),
        (token, p) => hash.update(fingerprintLine(p, token)))
      if (hash.digest('hex') !== category.fingerprint) return `${category.path} changed`
      budget -= packages.length + 1
    }
    return null
  }
}

/**
 * Reloads the index when a repo changes. Each check stats a few sync
 * sentinels per repo (the repo dir, its Manifest, metadata/timestamp.chk and
 * timestamp.commit), which a sync always changes, then the Manifests of some
 * categories in turn, at most about `statsPerCheck` of them, so that a hand
 * edit in an overlay is noticed too within a few checks. A reload builds a new
 * index in the background (reads are async) and replaces the current one only
 * when done; a change during the reload shows at the next check.
 */
export function watchRepos (index: ManifestIndex, opts?: ManifestWatchOptions): ManifestWatcher {
  return new ManifestWatcher(index, opts)
}
