/**
 * The digests of binary packages (a PKGDIR's files), kept across restarts
 * like the hash index: a file whose dev, inode, size and mtime are what they
 * were is not read again. Hashing runs in the store's worker pool.
 */
import { lstat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '@distswarm/protocol'
import type { BinpkgDigests, HashPool } from './pool.js'
import { sameStat, type StatKey } from './scan.js'
import type { StateFile, StateWriter } from './statefile.js'

export const BUILD_HASHES_FILE = 'binpkg-hashes.json'
const VERSION = 1
/** Records kept at most: far above any PKGDIR, far below what would hurt. */
const MAX_RECORDS = 500_000

/** A binary package's digests, hex. */
export interface BuildDigests {
  size: number
  blake2b: string
  md5: string
  sha1: string
}

type Row = [path: string, dev: string, ino: string, size: string, mtimeNs: string, blake2b: string, md5: string, sha1: string]

interface Record extends BuildDigests { stat: StatKey }

const HEX = { blake2b: /^[0-9a-f]{128}$/, md5: /^[0-9a-f]{32}$/, sha1: /^[0-9a-f]{40}$/ }
const BIGINT = /^\d{1,20}$/

function rowOk (r: unknown): r is Row {
  return Array.isArray(r) && r.length === 8 && r.every((v) => typeof v === 'string') &&
    [1, 2, 3, 4].every((i) => BIGINT.test(r[i] as string)) &&
    HEX.blake2b.test(r[5] as string) && HEX.md5.test(r[6] as string) && HEX.sha1.test(r[7] as string)
}

export class BuildHashes {
  private readonly pool: HashPool
  private readonly logger: Logger
  private readonly records = new Map<string, Record>()
  private readonly file: StateFile

  constructor (init: { pool: HashPool, writer: StateWriter, logger: Logger }) {
    this.pool = init.pool
    this.logger = init.logger
    this.file = init.writer.add({ name: BUILD_HASHES_FILE, what: 'binary package hashes', delayMs: 2000, minIntervalMs: 30_000, encode: () => this.encode() })
  }

  /** Reads the saved records; an unreadable file is a warning, and every package is hashed again. */
  async load (stateDir: string | null): Promise<void> {
    if (stateDir === null) return
    const path = join(stateDir, BUILD_HASHES_FILE)
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      this.logger.warn('binpkg-hashes.unusable', { file: path, problem: (err as Error).message, note: 'hashing the binary packages again' })
      return
    }
    const p = parsed as { version?: unknown, rows?: unknown }
    if (p?.version !== VERSION || !Array.isArray(p.rows)) {
      this.logger.warn('binpkg-hashes.unusable', { file: path, problem: 'not a version 1 record', note: 'hashing the binary packages again' })
      return
    }
    for (const r of p.rows.slice(0, MAX_RECORDS)) {
      if (!rowOk(r)) continue
      this.records.set(r[0], {
        stat: { dev: BigInt(r[1]), ino: BigInt(r[2]), size: BigInt(r[3]), mtimeNs: BigInt(r[4]) },
        size: Number(r[3]),
        blake2b: r[5],
        md5: r[6],
        sha1: r[7]
      })
    }
  }

  /**
   * The digests of the file at `path`: from the record while its stat is
   * unchanged, else read in the pool (and, with `remember`, recorded).
   * Rejects with an errno-style code when it is gone or not a regular file.
   */
  async hash (path: string, remember: boolean): Promise<BuildDigests> {
    const st = await lstat(path, { bigint: true })
    if (!st.isFile()) {
      this.forget(path)
      throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTFILE' })
    }
    const stat: StatKey = { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs }
    const known = this.records.get(path)
    if (known && sameStat(known.stat, stat)) return { size: known.size, blake2b: known.blake2b, md5: known.md5, sha1: known.sha1 }
    let got: BinpkgDigests
    try {
      got = await this.pool.binpkg(path, { dev: st.dev, ino: st.ino })
    } catch (err) {
      this.forget(path)
      throw err
    }
    const digests = { size: got.size, blake2b: got.blake2b.toString('hex'), md5: got.md5.toString('hex'), sha1: got.sha1.toString('hex') }
    if (remember) {
      if (this.records.size >= MAX_RECORDS && !this.records.has(path)) this.records.delete(this.records.keys().next().value!)
      this.records.set(path, { ...digests, stat: got.stat })
      this.file.markDirty()
    }
    return digests
  }

  /** Drops the records of files not in `live` (a PKGDIR no longer lists them). */
  retain (live: ReadonlySet<string>, under: string): void {
    for (const path of this.records.keys()) {
      if (path.startsWith(under) && !live.has(path)) this.forget(path)
    }
  }

  private forget (path: string): void {
    if (this.records.delete(path)) this.file.markDirty()
  }

  private encode (): Buffer {
    const rows: Row[] = []
    for (const [path, r] of this.records) {
      rows.push([path, String(r.stat.dev), String(r.stat.ino), String(r.stat.size), String(r.stat.mtimeNs), r.blake2b, r.md5, r.sha1])
    }
    return Buffer.from(JSON.stringify({ version: VERSION, rows }) + '\n')
  }
}
