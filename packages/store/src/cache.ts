import { constants } from 'node:fs'
import { chmod, link, mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { assertValidName, debugLogger, isHexDigest, toHex, type Logger, type PieceRange } from '@distswarm/protocol'
import { StoreError } from './errors.js'
import type { Digests } from './hash.js'
import type { HashPool } from './pool.js'
import { statFile } from './scan.js'
import type { HashStream, StreamHasher } from './streamhash.js'

/** What a download must turn out to be before it is published. */
export interface Expected {
  name: string
  size: number
  blake2b: Buffer
  /**
   * Also checked, and only then computed, when non-empty. A download whose
   * BLAKE2B is what the caller asked for needs no SHA512: the BLAKE2B match
   * is the check (see docs/architecture.md, "Checked").
   */
  sha512?: Buffer
}

export interface CacheDirInit {
  /** The flat directory Portage reads through PORTAGE_RO_DISTDIRS. */
  dir: string
  /** Mode of published files. Default 0o644: Portage's user reads them. */
  fileMode?: number
  /** Hashes downloads as they are written. */
  hasher: StreamHasher
  /** Hashes a file already under a download's name, to tell whether it is the same content. */
  pool: HashPool
  logger?: Logger
}

const PARTIAL_DIR = '.partial'
/** A partial download untouched this long is dropped at open; younger ones wait to be resumed. */
const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600_000

/** The chunks less their first `skip` bytes: what a short writev left to write. */
function remainder (chunks: readonly Uint8Array[], skip: number): Uint8Array[] {
  if (skip === 0) return chunks as Uint8Array[]
  const out: Uint8Array[] = []
  for (const c of chunks) {
    if (skip >= c.byteLength) { skip -= c.byteLength; continue }
    out.push(skip > 0 ? c.subarray(skip) : c)
    skip = 0
  }
  return out
}

function isDiskFull (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/**
 * The cache dir: flat, written only by the agent. A download goes to
 * `.partial/<digest>` (a name Portage never looks at), is verified, then
 * appears under its name by link(2), which is atomic and never replaces an
 * existing file. So Portage sees a whole, verified file or nothing.
 */
export class CacheDir {
  readonly dir: string
  readonly partialDir: string
  private readonly fileMode: number
  private readonly hasher: StreamHasher
  private readonly pool: HashPool
  private readonly logger: Logger
  /** Downloads in progress by hex digest; null while begin() sets one up. */
  private readonly active = new Map<string, Download | null>()

  constructor (init: CacheDirInit) {
    this.dir = init.dir
    this.partialDir = join(init.dir, PARTIAL_DIR)
    this.fileMode = init.fileMode ?? 0o644
    this.hasher = init.hasher
    this.pool = init.pool
    this.logger = init.logger ?? debugLogger('distswarm:store:cache')
  }

  /**
   * Creates the dirs. Partial downloads a stopped or crashed run left behind
   * stay to be resumed (begin() re-verifies them as it reads them back),
   * unless they are older than PARTIAL_MAX_AGE_MS or not ours.
   */
  async open (): Promise<void> {
    await mkdir(this.partialDir, { recursive: true })
    const now = Date.now()
    for (const name of await readdir(this.partialDir)) {
      if (this.active.has(name)) continue
      const st = await stat(join(this.partialDir, name)).catch(() => null)
      if (isHexDigest(name) && st?.isFile() && now - st.mtimeMs < PARTIAL_MAX_AGE_MS) continue
      this.logger.debug('partial.removed', { name })
      await rm(join(this.partialDir, name), { recursive: true, force: true })
    }
  }

  /** Starts a download; throws ERR_DOWNLOAD_BUSY when one for the same digest is in progress. */
  async begin (expected: Expected): Promise<Download> {
    assertValidName(expected.name)
    const key = toHex(expected.blake2b)
    if (this.active.has(key)) throw StoreError.BUSY(expected.name)
    this.active.set(key, null)
    const path = join(this.partialDir, key)
    let download: Download | undefined
    try {
      // Not 'a': writes go to explicit positions, and truncate() rewinds.
      const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
      download = new Download(this, this.hasher, expected, path, fh, () => this.active.delete(key))
      this.active.set(key, download)
      await download.readBack()
      return download
    } catch (err) {
      await download?.suspend()
      this.active.delete(key)
      throw isDiskFull(err) ? StoreError.DISK_FULL(expected.name, this.dir, err) : err
    }
  }

  /** @internal */
  logDebug (event: string, fields: Record<string, string | number>): void {
    this.logger.debug(event, fields)
  }

  /** Suspends every download in progress (its bytes stay to be resumed) and closes its file. */
  async suspendAll (): Promise<void> {
    await Promise.all([...this.active.values()].map((d) => d?.suspend()))
  }

  /** @internal Piece hashes of a partial file's bytes (see Download.hashPieces). */
  hashPieces (path: string, range: PieceRange): Promise<Buffer[]> {
    return this.pool.pieces(path, range)
  }

  /** @internal Publishes a verified temporary file under its name. */
  async publish (expected: Expected, tempPath: string): Promise<string> {
    const final = join(this.dir, expected.name)
    await chmod(tempPath, this.fileMode)
    try {
      await link(tempPath, final)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      // Same name already here: fine when it is the same content, never
      // replaced otherwise. Its size tells most apart without a read; else
      // its BLAKE2B (the one digest compared) is computed in a hash worker.
      const existing = await statFile(final)
      if (existing === null || existing.size !== BigInt(expected.size)) throw StoreError.NAME_TAKEN(expected.name, this.dir)
      const blake2b = await this.pool.blake2b(final, existing)
      if (!blake2b.equals(expected.blake2b)) throw StoreError.NAME_TAKEN(expected.name, this.dir)
    } finally {
      await rm(tempPath, { force: true })
    }
    return final
  }
}

/** Bytes written between two hand-overs to the hash workers: each is a message to both. */
const FEED_STEP = 8 * 1024 * 1024
/** Bytes written between two flushes to disk while a download goes on (see Download.write). */
const FLUSH_STEP = 64 * 1024 * 1024

/**
 * One download in progress: bytes appended in order, hashed off the main
 * thread (StreamHasher) as they land.
 */
export class Download {
  readonly expected: Expected
  readonly tempPath: string
  private readonly cache: CacheDir
  private readonly hasher: StreamHasher
  private stream: HashStream
  /** Whether the SHA512 is computed (and checked) too. */
  private readonly sha512: boolean
  private fh: FileHandle | null
  private readonly release: () => void
  private verified: Digests | null = null
  private size = 0
  /** With gaps allowed: the end of the bytes written without a gap from 0, and the ranges written past it (start -> end). */
  private prefix = 0
  private readonly beyond = new Map<number, number>()
  /** The next verify() reads the whole file again rather than trusting the digests of the bytes as they landed (see distrust()). */
  private rehash = false
  /** Bytes written when the last flush to disk began, and that flush while it runs. */
  private flushedAt = 0
  private flushing: Promise<void> | null = null
  /** write() keeps no reference to the chunks once it resolved (the swarm reuses their buffers). */
  readonly releasesChunks = true

  constructor (cache: CacheDir, hasher: StreamHasher, expected: Expected, tempPath: string, fh: FileHandle, release: () => void) {
    this.cache = cache
    this.hasher = hasher
    this.expected = expected
    this.tempPath = tempPath
    this.fh = fh
    this.release = release
    this.sha512 = (expected.sha512?.byteLength ?? 0) > 0
    this.stream = this.freshStream()
  }

  /** Hashing from the start of the file. */
  private freshStream (): HashStream {
    return this.hasher.open(this.tempPath, this.sha512)
  }

  /** Bytes in the partial file: what the next write() follows. */
  get written (): number {
    return this.size
  }

  /** Bytes that were already on disk from an earlier attempt when this download began. */
  resumedFrom = 0

  /**
   * Writes may land past `written`, leaving a gap to be filled later (a
   * swarming download writes pieces in any order; `written` is then the end
   * of the furthest). Off by default: a gap is ERR_DOWNLOAD_GAP. The
   * whole-file check is the same either way (hashed as the gapless prefix
   * grows); a download that stops with gaps must be truncate()d to its
   * gapless prefix before suspend().
   */
  allowGaps = false

  /**
   * @internal Takes up what an earlier attempt left in the partial file: its
   * bytes are hashed in the background while the rest arrives. A partial
   * longer than the file is discarded.
   */
  async readBack (): Promise<void> {
    const { size } = await this.handle().stat()
    if (size > this.expected.size) await this.truncate(0)
    else this.size = this.prefix = size
    this.stream.feed(this.size)
    if (this.size > 0) this.cache.logDebug('download.resumed', { name: this.expected.name, bytes: this.size })
    this.resumedFrom = this.size
  }

  /**
   * The piece hashes (the first 32 bytes of each piece's BLAKE2b-512) of
   * what was written over [offset, offset + length), read back from the
   * partial file in the hash pool: for a swarming download that checks
   * pieces it wrote before anyone else wanted them.
   */
  hashPieces (offset: number, length: number, pieceSize: number): Promise<Buffer[]> {
    return this.cache.hashPieces(this.tempPath, { offset, length, pieceSize })
  }

  /**
   * What the last verify() found wrong, or null. 'sha512': size and BLAKE2B
   * match, so every byte is the BLAKE2B's; the SHA512 expected is another
   * file's, and no rewrite can mend that.
   */
  mismatch: 'size' | 'blake2b' | 'sha512' | null = null

  /** The digests computed from the bytes written (SHA512 only if it was checked), once commit() has verified them; else null. */
  get digests (): Digests | null {
    return this.verified
  }

  /**
   * Writes bytes (one chunk, or several in one writev) at `offset`: by
   * default after what is there (appending), or over bytes already written
   * (a repair of pieces a lying peer sent; the hashes then start over at the
   * next verify()). Resolves once they are handed to the OS, so callers get
   * backpressure. Calls must not overlap.
   */
  async write (data: Uint8Array | readonly Uint8Array[], offset = this.size): Promise<void> {
    const fh = this.handle()
    const chunks = Array.isArray(data) ? data as readonly Uint8Array[] : [data as Uint8Array]
    const length = chunks.reduce((n, c) => n + c.byteLength, 0)
    const end = Math.max(this.size, offset + length)
    if (end > this.expected.size) {
      await this.abort()
      throw StoreError.SIZE_EXCEEDED(this.expected.name, this.expected.size)
    }
    if (offset > this.size && !this.allowGaps) throw StoreError.GAP(this.expected.name, offset, this.size)
    try {
      let done = 0
      while (done < length) {
        const { bytesWritten } = await fh.writev(remainder(chunks, done), offset + done)
        done += bytesWritten
      }
    } catch (err) {
      await this.abort()
      throw isDiskFull(err) ? StoreError.DISK_FULL(this.expected.name, this.cache.dir, err) : err
    }
    this.verified = null
    if (offset < this.stream.size) {
      // Bytes already hashed changed: hash from the start at the next verify().
      this.stream.close()
      this.stream = this.freshStream()
      this.rehash = true
    }
    this.size = end
    this.landed(offset, offset + length)
    // Hashed as they land, up to the first gap (pieces of a swarming download land in any order);
    // a repair's rewrites are hashed by verify(), once, after the last of them.
    if (!this.rehash && (this.prefix - this.stream.size >= FEED_STEP || this.prefix === this.expected.size)) this.stream.feed(this.prefix)
    // The file is flushed to disk as it grows, in the background, so the flush before it is published has only the tail left.
    if (this.flushing === null && this.size - this.flushedAt >= FLUSH_STEP) {
      this.flushedAt = this.size
      this.flushing = fh.datasync().catch(() => {}).finally(() => { this.flushing = null })
    }
  }

  /** Moves the gapless prefix on over the ranges written. */
  private landed (start: number, end: number): void {
    if (start > this.prefix) {
      this.beyond.set(start, Math.max(end, this.beyond.get(start) ?? 0))
      return
    }
    this.prefix = Math.max(this.prefix, end)
    // Ranges written past the old prefix that it now reaches carry it on.
    for (let moved = true; moved;) {
      moved = false
      for (const [at, to] of this.beyond) {
        if (at > this.prefix) continue
        this.beyond.delete(at)
        if (to > this.prefix) {
          this.prefix = to
          moved = true
        }
      }
    }
  }

  /**
   * The next verify() reads the whole partial file again instead of using
   * the digests computed as its bytes landed: for a file others read from
   * while it was in flight (swarming), whose bytes they checked against
   * piece hashes, so our own verdict is drawn from the disk as it is then.
   */
  distrust (): void {
    if (this.rehash) return
    this.rehash = true
    this.stream.close()
    this.stream = this.freshStream()
  }

  /**
   * Cuts the partial file back to `offset` bytes, to be written again from
   * there (bytes after it came from a peer found lying); the hashes start over.
   */
  async truncate (offset: number): Promise<void> {
    await this.handle().truncate(offset)
    this.size = offset
    this.prefix = Math.min(this.prefix, offset)
    for (const [at, to] of this.beyond) {
      if (at >= offset) this.beyond.delete(at)
      else if (to > offset) this.beyond.set(at, offset)
    }
    this.verified = null
    this.stream.close()
    this.stream = this.freshStream()
    this.rehash = false
    this.stream.feed(this.prefix)
  }

  /**
   * Checks the size and digests of what was written: null when they
   * match, else what is wrong. The download stays open either way, to be
   * committed, repaired (truncate() and write again) or aborted.
   */
  async verify (): Promise<string | null> {
    this.handle()
    const { size, blake2b, sha512 } = this.expected
    this.stream.feed(this.size)
    const got = await this.stream.digest()
    let problem: string | null = null
    this.mismatch = null
    if (got.size !== size) [this.mismatch, problem] = ['size', `size is ${got.size}, expected ${size}`]
    else if (!got.blake2b.equals(blake2b)) [this.mismatch, problem] = ['blake2b', 'BLAKE2B digest does not match']
    else if (this.sha512 && !got.sha512.equals(sha512!)) [this.mismatch, problem] = ['sha512', 'SHA512 digest does not match']
    this.verified = problem === null ? got : null
    // A repair hashes again, from the start; a verified file is not hashed again (the workers would hold it open).
    if (problem !== null) {
      this.stream = this.freshStream()
      this.rehash = true
    }
    return problem
  }

  /** Verifies (unless verify() just passed) and publishes; returns the final path. A download that fails verification is discarded: ERR_VERIFY_FAILED. */
  async commit (): Promise<string> {
    const fh = this.handle()
    const { name } = this.expected
    let problem: string | null = null
    try {
      if (this.verified === null) problem = await this.verify()
    } catch (err) {
      await this.abort()
      throw err
    }
    if (problem !== null) {
      await this.abort()
      throw StoreError.VERIFY_FAILED(name, problem)
    }
    try {
      await this.flushing
      await fh.sync()
      await fh.close()
      this.fh = null
      return await this.cache.publish(this.expected, this.tempPath)
    } catch (err) {
      await this.abort()
      throw isDiskFull(err) ? StoreError.DISK_FULL(name, this.cache.dir, err) : err
    } finally {
      this.release()
    }
  }

  /**
   * Stops without publishing but keeps the bytes so far, for a later begin()
   * of the same file to resume: for when the sources went away, not when
   * bytes were wrong (that is abort()). Idempotent.
   */
  async suspend (): Promise<void> {
    const fh = this.letGo()
    await fh?.sync().catch(() => {})
    await fh?.close().catch(() => {})
    this.release()
  }

  /** Discards the download. Idempotent. */
  async abort (): Promise<void> {
    const fh = this.letGo()
    await fh?.close().catch(() => {})
    await rm(this.tempPath, { force: true })
    this.release()
  }

  /** Stops hashing and takes the file handle away (null when it was gone already), for suspend() and abort(). */
  private letGo (): FileHandle | null {
    this.stream.close()
    const fh = this.fh
    this.fh = null
    return fh
  }

  private handle (): FileHandle {
    if (this.fh === null) throw StoreError.CLOSED(this.expected.name)
    return this.fh
  }
}
