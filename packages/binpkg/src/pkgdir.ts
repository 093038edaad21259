/**
 * A box's own builds: PKGDIR/Packages read, each listed file checked (a
 * regular file inside PKGDIR, of the listed SIZE, MD5 and SHA1) and hashed
 * (BLAKE2B, its address in the swarm). Files the index does not list are
 * ignored. Portage rewrites Packages after each build (by rename), so the
 * directory is watched for it; hashes are kept by (path, size, mtime, inode)
 * and only new or changed files are read again.
 */
import { EventEmitter } from 'node:events'
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { lstat, open, readFile, realpath } from 'node:fs/promises'
import { isAbsolute, join, sep } from 'node:path'
import { debugLogger, forEachBounded, type Logger } from '@distswarm/protocol'
import { buildFromStanza, type Build } from './build.js'
import { BinpkgError } from './errors.js'
import { readPackagesIndex, type Fields, type IndexProblem } from './index-file.js'

export interface LocalBuild {
  build: Build
  /** The stanza with the header's CHOST filled in when it had none. */
  fields: Fields
  blake2b: string
  md5: string
  sha1: string
  /** Absolute path of the package file. */
  file: string
}

/** A package file's digests, hex. */
export interface FileDigests { blake2b: string, md5: string, sha1: string }

export interface PkgdirIndexInit {
  pkgdir: string
  logger?: Logger
  /**
   * Hashes a package file (BLAKE2B, MD5, SHA1). Default: read here, on the
   * event loop; the agent passes its store's worker pool, which also keeps
   * the digests across restarts.
   */
  hash?: (file: string) => Promise<FileDigests>
  /** Wait after a change of Packages before reading it (Portage may write several times). */
  settleMs?: number
}

export interface PkgdirEvents {
  /** The set of builds changed: all of them, as they are now. */
  change: [LocalBuild[]]
}

export const SETTLE_MS = 300
/** Package files hashed at a time: enough to keep a few hash threads busy. */
const HASH_WINDOW = 4
const READ_CHUNK = 1024 * 1024

interface Hashed { key: string, blake2b: string, md5: string, sha1: string }

/** BLAKE2B-512, MD5 and SHA1 of a file in one read. */
async function hashFile (path: string): Promise<FileDigests> {
  const b2 = createHash('blake2b512')
  const md5 = createHash('md5')
  const sha1 = createHash('sha1')
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK)
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      const chunk = buf.subarray(0, bytesRead)
      b2.update(chunk)
      md5.update(chunk)
      sha1.update(chunk)
    }
  } finally {
    await fh.close()
  }
  return { blake2b: b2.digest('hex'), md5: md5.digest('hex'), sha1: sha1.digest('hex') }
}

export class PkgdirIndex extends EventEmitter<PkgdirEvents> {
  readonly pkgdir: string
  private readonly log: Logger
  private readonly settleMs: number
  private readonly hashFile: (file: string) => Promise<FileDigests>
  private readonly hashes = new Map<string, Hashed>()
  private current: LocalBuild[] = []
  private header: Fields = {}
  private watcher: FSWatcher | null = null
  private timer: NodeJS.Timeout | null = null
  private reading: Promise<void> | null = null
  private again = false
  private started = false

  constructor (init: PkgdirIndexInit) {
    super()
    if (!isAbsolute(init.pkgdir)) throw BinpkgError.OPTION('pkgdir', `must be an absolute path, got ${JSON.stringify(init.pkgdir)}`)
    const settle = init.settleMs ?? SETTLE_MS
    if (!Number.isInteger(settle) || settle < 0) throw BinpkgError.OPTION('settleMs', 'must be a whole number of milliseconds')
    this.pkgdir = init.pkgdir
    this.settleMs = settle
    this.hashFile = init.hash ?? hashFile
    this.log = init.logger ?? debugLogger('distswarm:binpkg')
  }

  /** The builds as last read. */
  get builds (): readonly LocalBuild[] {
    return this.current
  }

  /** The header of the last Packages read (CHOST, ARCH, …). */
  get indexHeader (): Readonly<Fields> {
    return this.header
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    try {
      await this.refresh()
      // Portage replaces Packages by rename: watch the directory, not the file.
      this.watcher = watch(this.pkgdir, { persistent: false }, (_type, name) => {
        if (name === null || name === 'Packages') this.schedule()
      })
      this.watcher.on('error', (err) => this.log.warn('pkgdir.watch-failed', { pkgdir: this.pkgdir, why: err.message }))
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.watcher?.close()
    this.watcher = null
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.reading
  }

  private schedule (): void {
    if (!this.started) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.refresh().catch((err: Error) => this.log.warn('pkgdir.read-failed', { pkgdir: this.pkgdir, why: err.message }))
    }, this.settleMs)
  }

  /** Reads Packages again now; a call during a read makes that read run once more. */
  async refresh (): Promise<void> {
    if (this.reading) {
      this.again = true
      return this.reading
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false
          await this.readOnce()
        } while (this.again && this.started)
      } finally {
        this.reading = null
      }
    })()
    return this.reading
  }

  private async readOnce (): Promise<void> {
    let data: Buffer
    try {
      data = await readFile(join(this.pkgdir, 'Packages'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.publish([], {})
      return
    }
    let index
    try {
      index = readPackagesIndex(data)
    } catch (err) {
      // A broken index offers nothing rather than what it offered before: its files may be gone.
      this.log.warn('pkgdir.index-refused', { pkgdir: this.pkgdir, why: (err as Error).message })
      this.publish([], {})
      return
    }
    for (const p of index.problems) this.skip(p)
    const root = await realpath(this.pkgdir)
    const stanzas = index.stanzas
    const checked: Array<LocalBuild | null> = new Array<LocalBuild | null>(stanzas.length).fill(null)
    await forEachBounded(stanzas.keys(), HASH_WINDOW, async (i) => {
      const fields = { ...stanzas[i]! }
      if (fields.CHOST === undefined && index.header.CHOST) fields.CHOST = index.header.CHOST
      try {
        checked[i] = await this.check(root, buildFromStanza(fields), fields)
      } catch (err) {
        this.skip({ line: 0, cpv: fields.CPV ?? null, reason: (err as Error).message })
      }
    })
    this.publish(checked.filter((b) => b !== null), index.header)
  }

  private skip (p: IndexProblem): void {
    this.log.warn('pkgdir.build-skipped', { pkgdir: this.pkgdir, cpv: p.cpv, line: p.line || undefined, why: p.reason })
  }

  /** The file a stanza names, if it is there and is what the stanza says. */
  private async check (root: string, build: Build, fields: Fields): Promise<LocalBuild> {
    const file = join(root, build.path)
    // A symlink or a path that leaves PKGDIR through one is not offered.
    const st = await lstat(file).catch(() => null)
    if (st === null || !st.isFile()) throw BinpkgError.BAD_BUILD(build.cpv, `${build.path} is missing or not a regular file`)
    const real = await realpath(file)
    if (!real.startsWith(root + sep)) throw BinpkgError.BAD_BUILD(build.cpv, `${build.path} leads outside PKGDIR`)
    if (st.size !== build.size) throw BinpkgError.BAD_BUILD(build.cpv, `${build.path} has ${st.size} bytes, SIZE says ${build.size}`)
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`
    let h = this.hashes.get(file)
    if (h === undefined || h.key !== key) {
      h = { key, ...await this.hashFile(file) }
      this.hashes.set(file, h)
    }
    if (build.md5 !== null && build.md5 !== h.md5) throw BinpkgError.BAD_BUILD(build.cpv, `${build.path} does not match its MD5`)
    if (build.sha1 !== null && build.sha1 !== h.sha1) throw BinpkgError.BAD_BUILD(build.cpv, `${build.path} does not match its SHA1`)
    return { build, fields, blake2b: h.blake2b, md5: h.md5, sha1: h.sha1, file }
  }

  private publish (builds: LocalBuild[], header: Fields): void {
    const live = new Set(builds.map((b) => b.file))
    for (const file of this.hashes.keys()) if (!live.has(file)) this.hashes.delete(file)
    this.header = header
    const before = this.current.map((b) => b.blake2b).sort().join()
    this.current = builds
    if (builds.map((b) => b.blake2b).sort().join() !== before) this.emit('change', builds)
  }
}
