import { chmod, link, mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import createDebug from 'debug'
import { assertValidName, isHexDigest, toHex } from '@distswarm/protocol'
import { StoreError } from './errors.js'
import { DualHasher, hashFile, type Digests } from './hash.js'

const log = createDebug('distswarm:store')

/** What a download must turn out to be before it is published. */
export interface Expected {
  name: string
  size: number
  blake2b: Buffer
  /** Checked when non-empty. */
  sha512?: Buffer
}

export interface CacheDirInit {
  /** The flat directory Portage reads through PORTAGE_RO_DISTDIRS. */
  dir: string
  /** Mode of published files. Default 0o644: Portage's user reads them. */
  fileMode?: number
}

const PARTIAL_DIR = '.partial'
/** A partial download untouched this long is dropped at open; younger ones wait to be resumed. */
const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600_000
const RESUME_READ = 1024 * 1024

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
  private readonly active = new Set<string>()

  constructor (init: CacheDirInit) {
    this.dir = init.dir
    this.partialDir = join(init.dir, PARTIAL_DIR)
    this.fileMode = init.fileMode ?? 0o644
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
      log('removing stale partial download %s', name)
      await rm(join(this.partialDir, name), { recursive: true, force: true })
    }
  }

  /** Starts a download; throws ERR_DOWNLOAD_BUSY when one for the same digest is in progress. */
  async begin (expected: Expected): Promise<Download> {
    assertValidName(expected.name)
    const key = toHex(expected.blake2b)
    if (this.active.has(key)) throw StoreError.BUSY(expected.name)
    this.active.add(key)
    const path = join(this.partialDir, key)
    try {
      const fh = await open(path, 'a+', 0o600)
      const download = new Download(this, expected, path, fh, () => this.active.delete(key))
      await download.readBack()
      return download
    } catch (err) {
      this.active.delete(key)
      throw isDiskFull(err) ? StoreError.DISK_FULL(expected.name, this.dir, err) : err
    }
  }

  /** @internal Publishes a verified temporary file under its name. */
  async publish (expected: Expected, tempPath: string): Promise<string> {
    const final = join(this.dir, expected.name)
    await chmod(tempPath, this.fileMode)
    try {
      await link(tempPath, final)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      // Same name already here: fine when it is the same content, never replaced otherwise.
      const existing = await hashFile(final)
      if (!existing.blake2b.equals(expected.blake2b)) throw StoreError.NAME_TAKEN(expected.name, this.dir)
    } finally {
      await rm(tempPath, { force: true })
    }
    return final
  }
}

/** One download in progress: bytes in order, hashed as they are written. */
export class Download {
  readonly expected: Expected
  readonly tempPath: string
  private readonly cache: CacheDir
  private readonly hasher = new DualHasher()
  private fh: FileHandle | null
  private readonly release: () => void
  private verified: Digests | null = null

  constructor (cache: CacheDir, expected: Expected, tempPath: string, fh: FileHandle, release: () => void) {
    this.cache = cache
    this.expected = expected
    this.tempPath = tempPath
    this.fh = fh
    this.release = release
  }

  get written (): number {
    return this.hasher.size
  }

  /** Bytes that were already on disk from an earlier attempt when this download began. */
  resumedFrom = 0

  /**
   * @internal Hashes what an earlier attempt left in the partial file, so
   * writing goes on after it. A partial longer than the file is discarded.
   */
  async readBack (): Promise<void> {
    const fh = this.handle()
    const { size } = await fh.stat()
    if (size > this.expected.size) {
      await fh.truncate(0)
      return
    }
    const buf = Buffer.allocUnsafe(Math.min(RESUME_READ, Math.max(size, 1)))
    while (this.hasher.size < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - this.hasher.size), this.hasher.size)
      if (bytesRead === 0) break
      this.hasher.update(buf.subarray(0, bytesRead))
    }
    if (this.hasher.size > 0) log('resuming %s after %d bytes', this.expected.name, this.hasher.size)
    this.resumedFrom = this.hasher.size
  }

  /** Both digests as computed from the bytes written, once commit() has verified them; else null. */
  get digests (): Digests | null {
    return this.verified
  }

  /** Appends bytes; resolves once they are handed to the OS, so callers get backpressure. */
  async write (chunk: Uint8Array): Promise<void> {
    const fh = this.handle()
    if (this.hasher.size + chunk.byteLength > this.expected.size) {
      await this.abort()
      throw StoreError.SIZE_EXCEEDED(this.expected.name, this.expected.size)
    }
    this.hasher.update(chunk)
    try {
      let done = 0
      while (done < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done)
        done += bytesWritten
      }
    } catch (err) {
      await this.abort()
      throw isDiskFull(err) ? StoreError.DISK_FULL(this.expected.name, this.cache.dir, err) : err
    }
  }

  /** Verifies size and hashes; on success publishes and returns the final path, else discards and throws ERR_VERIFY_FAILED. */
  async commit (): Promise<string> {
    const fh = this.handle()
    const { name, size, blake2b, sha512 } = this.expected
    const got = this.hasher.digest()
    let problem: string | null = null
    if (got.size !== size) problem = `size is ${got.size}, expected ${size}`
    else if (!got.blake2b.equals(blake2b)) problem = 'BLAKE2B digest does not match'
    else if (sha512 && sha512.byteLength > 0 && !got.sha512.equals(sha512)) problem = 'SHA512 digest does not match'
    if (problem !== null) {
      await this.abort()
      throw StoreError.VERIFY_FAILED(name, problem)
    }
    this.verified = got
    try {
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
    const fh = this.fh
    this.fh = null
    await fh?.sync().catch(() => {})
    await fh?.close().catch(() => {})
    this.release()
  }

  /** Discards the download. Idempotent. */
  async abort (): Promise<void> {
    const fh = this.fh
    this.fh = null
    await fh?.close().catch(() => {})
    await rm(this.tempPath, { force: true })
    this.release()
  }

  private handle (): FileHandle {
    if (this.fh === null) throw StoreError.CLOSED(this.expected.name)
    return this.fh
  }
}
