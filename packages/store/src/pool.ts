import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import createDebug from 'debug'
import type { PieceRange } from '@distswarm/protocol'
import { StoreError } from './errors.js'
import type { ListedFile, StatKey } from './scan.js'

const log = createDebug('distswarm:store:hash')

const READ_CHUNK = 1024 * 1024

/**
 * The worker's source, run with `eval: true`. A string rather than a file next
 * to this module because vitest runs the .ts sources and production the
 * compiled dist/: a `new URL('./x.js', import.meta.url)` worker would only
 * exist in one of them. Plain CommonJS, no imports of ours, so nothing to build.
 *
 * One synchronous read pass per file feeds both hashes; the file is opened
 * with O_NOFOLLOW (a symlink swapped in after the lstat fails with ELOOP) and
 * O_NONBLOCK (a FIFO swapped in cannot hang the thread), then fstat'ed to be
 * the very file that was listed. Its stat before and after the read must agree,
 * or the digests would describe no version of the file.
 *
 * Listing a dir (readdir, then lstat of each regular file) runs here too:
 * synchronous calls in a worker are about four times faster than 20 000
 * async lstats through libuv's pool, and a hung NFS distdir stalls a worker,
 * not the threads the rest of the agent's fs calls need.
 */
const WORKER_SOURCE = `'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const { join } = require('node:path')
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants
const stop = workerData.stop
const chunk = Buffer.allocUnsafe(workerData.chunk)
function fail (code, message) { const e = new Error(message); e.code = code; return e }
// Opens the file the job names, and only if it is still the regular file that was listed.
function openListed (job) {
  const fd = fs.openSync(job.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  try {
    const st = fs.fstatSync(fd, { bigint: true })
    if (!st.isFile()) throw fail('ENOTFILE', 'not a regular file')
    if (job.dev !== undefined && (st.dev !== job.dev || st.ino !== job.ino)) throw fail('ECHANGED', 'replaced since it was listed')
    return { fd, st }
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
}
function hash (job) {
  let bytes = 0
  let fd = -1
  try {
    const opened = openListed(job)
    fd = opened.fd
    const before = opened.st
    const b2 = createHash('blake2b512')
    const s512 = createHash('sha512')
    for (;;) {
      if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'hashing was cancelled')
      const n = fs.readSync(fd, chunk, 0, chunk.length, bytes)
      if (n === 0) break
      const view = chunk.subarray(0, n)
      b2.update(view)
      s512.update(view)
      bytes += n
    }
    const after = fs.fstatSync(fd, { bigint: true })
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(bytes) !== after.size) throw fail('ECHANGED', 'changed while it was read')
    return { ok: true, bytes, blake2b: b2.digest(), sha512: s512.digest(), stat: { dev: after.dev, ino: after.ino, size: after.size, mtimeNs: after.mtimeNs } }
  } catch (err) {
    return { ok: false, bytes, code: String(err.code || 'EIO'), message: String(err.message) }
  } finally {
    if (fd >= 0) try { fs.closeSync(fd) } catch {}
  }
}
function pieces (job) {
  let bytes = 0
  let fd = -1
  try {
    fd = openListed(job).fd
    const hashes = []
    const end = job.offset + job.length
    for (let start = job.offset; start < end; start += job.pieceSize) {
      const h = createHash('blake2b512')
      const last = Math.min(end, start + job.pieceSize)
      for (let pos = start; pos < last;) {
        if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'hashing was cancelled')
        const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, last - pos), pos)
        if (n === 0) throw fail('ECHANGED', 'ended at ' + pos)
        h.update(chunk.subarray(0, n))
        pos += n
        bytes += n
      }
      hashes.push(h.digest().subarray(0, 32))
    }
    return { ok: true, bytes, hashes }
  } catch (err) {
    return { ok: false, bytes, code: String(err.code || 'EIO'), message: String(err.message) }
  } finally {
    if (fd >= 0) try { fs.closeSync(fd) } catch {}
  }
}
function scan (job) {
  try {
    const files = []
    for (const d of fs.readdirSync(job.path, { withFileTypes: true })) {
      if (!d.isFile()) continue
      if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'listing was cancelled')
      let st
      try { st = fs.lstatSync(join(job.path, d.name), { bigint: true }) } catch { continue }
      if (st.isFile()) files.push({ name: d.name, stat: { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs } })
    }
    return { ok: true, bytes: 0, files }
  } catch (err) {
    return { ok: false, bytes: 0, code: String(err.code || 'EIO'), message: String(err.message) }
  }
}
const jobs = { hash, scan, pieces }
parentPort.on('message', (job) => parentPort.postMessage({ id: job.id, ...jobs[job.kind](job) }))
`

export type { PieceRange }

/** Digests of a whole file and the stat of the version that was read. */
export interface HashedFile {
  size: number
  blake2b: Buffer
  sha512: Buffer
  stat: StatKey
}

/**
 * What hashing one file came to. A failure carries the errno-style code:
 * ENOENT, EACCES, ELOOP (a symlink), ENOTFILE, or ECHANGED when the file was
 * replaced or written to while it was read; the caller decides what to retry.
 */
export type HashOutcome = ({ ok: true } & HashedFile) | { ok: false, code: string, message: string }

/** Hash failures that mean "look at the path again": it went, or became a symlink or something else. */
export const LOOK_AGAIN: ReadonlySet<string> = new Set(['ECHANGED', 'ENOENT', 'ELOOP', 'ENOTFILE'])

export interface HashPoolInit {
  /** Worker threads. Default: min(2, available cores). */
  size?: number
  /** An idle worker exits after this long and is started again on demand. Default 30 000 ms. */
  idleMs?: number
}

interface Reply {
  id: number
  ok: boolean
  bytes: number
  code?: string
  message?: string
  blake2b?: Uint8Array
  sha512?: Uint8Array
  stat?: StatKey
  files?: ListedFile[]
  hashes?: Uint8Array[]
}

type Request =
  | { kind: 'hash', path: string, dev?: bigint, ino?: bigint }
  | { kind: 'scan', path: string }
  | { kind: 'pieces', path: string, offset: number, length: number, pieceSize: number, dev?: bigint, ino?: bigint }

interface Job {
  id: number
  request: Request
  resolve: (r: Reply) => void
  reject: (err: unknown) => void
}

interface Slot {
  worker: Worker
  job: Job | null
  idleTimer: NodeJS.Timeout | null
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

export function defaultHashWorkers (): number {
  return Math.min(2, availableParallelism())
}

/**
 * Hashes files (and lists dirs) in worker threads, one job per worker at a
 * time, so a big DISTDIR never ties up the event loop. Jobs wait in FIFO
 * order; callers bound how many they submit (the Store keeps a small window
 * in flight), so the queue stays short.
 */
export class HashPool {
  readonly size: number
  /** Files read to the end and hashed. */
  filesHashed = 0
  /** Bytes read from files, including reads that were abandoned because the file changed. */
  bytesHashed = 0
  private readonly idleMs: number
  private readonly stop = new Int32Array(new SharedArrayBuffer(4))
  private readonly slots = new Set<Slot>()
  private readonly queue: Job[] = []
  private nextId = 1
  private closing: Promise<void> | null = null

  constructor (init: HashPoolInit = {}) {
    this.size = Math.max(1, Math.floor(init.size ?? defaultHashWorkers()))
    this.idleMs = init.idleMs ?? 30_000
  }

  /** Hashes `path`; with `expect`, only when it is still that dev/inode. Rejects ERR_STORE_CLOSED after close(). */
  async hash (path: string, expect?: { dev: bigint, ino: bigint }): Promise<HashOutcome> {
    const reply = await this.submit({ kind: 'hash', path, ...expect })
    if (!reply.ok) return { ok: false, code: reply.code ?? 'EIO', message: reply.message ?? 'unknown error' }
    return { ok: true, size: reply.bytes, blake2b: asBuffer(reply.blake2b!), sha512: asBuffer(reply.sha512!), stat: reply.stat! }
  }

  /**
   * The first 32 bytes of the BLAKE2b-512 of each `pieceSize` piece of
   * `path` from `offset` up to `offset + length` (the last piece may be
   * shorter); with `expect`, only when it is still that dev/inode. Rejects
   * with the errno-style code when the file cannot be read that far.
   */
  async pieces (path: string, range: PieceRange, expect?: { dev: bigint, ino: bigint }): Promise<Buffer[]> {
    const reply = await this.submit({ kind: 'pieces', path, ...range, ...expect })
    if (reply.ok) return reply.hashes!.map(asBuffer)
    throw Object.assign(new Error(`cannot hash pieces of ${path}: ${reply.message}`), { code: reply.code })
  }

  /**
   * The regular files of `dir` with their lstat (symlinks are not followed,
   * subdirs skipped), unsorted and unfiltered by name; a dir that does not
   * exist has none. Rejects with the errno error for any other failure.
   */
  async scan (dir: string): Promise<ListedFile[]> {
    const reply = await this.submit({ kind: 'scan', path: dir })
    if (reply.ok) return reply.files!
    if (reply.code === 'ENOENT') return []
    throw Object.assign(new Error(`cannot list ${dir}: ${reply.message}`), { code: reply.code })
  }

  private submit (request: Request): Promise<Reply> {
    if (this.closing) return Promise.reject(StoreError.STORE_CLOSED())
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, request, resolve, reject })
      this.dispatch()
    })
  }

  get busy (): number {
    let n = 0
    for (const s of this.slots) if (s.job) n++
    return n
  }

  /** Cancels queued and running jobs (they reject ERR_STORE_CLOSED) and stops the workers. Idempotent. */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    for (const job of this.queue.splice(0)) job.reject(StoreError.STORE_CLOSED())
    // Running jobs notice the flag within one chunk and close their fd; a
    // terminate() mid-read would leak it.
    Atomics.store(this.stop, 0, 1)
    const running = [...this.slots].map((s) => s.job).filter((j) => j !== null)
    const settled = running.map((j) => new Promise<void>((resolve) => {
      const { resolve: res, reject: rej } = j
      j.resolve = (o) => { res(o); resolve() }
      j.reject = (e) => { rej(e); resolve() }
    }))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(settled), new Promise((resolve) => { timer = setTimeout(resolve, 2000) })])
    clearTimeout(timer)
    await Promise.all([...this.slots].map((s) => this.retire(s)))
  }

  private dispatch (): void {
    while (this.queue.length > 0) {
      let slot: Slot | undefined
      for (const s of this.slots) if (!s.job) { slot = s; break }
      if (!slot) {
        if (this.slots.size >= this.size) return
        try {
          slot = this.spawn()
        } catch (err) {
          // No thread to be had (EAGAIN and the like): fail the waiting jobs rather than strand them.
          log('cannot start a hash worker: %s', (err as Error).message)
          if (this.slots.size === 0) for (const job of this.queue.splice(0)) job.reject(err)
          return
        }
      }
      this.run(slot, this.queue.shift()!)
    }
  }

  private run (slot: Slot, job: Job): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer)
    slot.idleTimer = null
    slot.job = job
    // Referenced only while busy: an idle pool never keeps the process alive.
    slot.worker.ref()
    slot.worker.postMessage({ id: job.id, ...job.request })
  }

  private spawn (): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { stop: this.stop, chunk: READ_CHUNK } })
    const slot: Slot = { worker, job: null, idleTimer: null }
    this.slots.add(slot)
    worker.on('message', (reply: Reply) => this.settle(slot, reply))
    worker.on('error', (err) => {
      log('hash worker failed: %s', err.message)
      this.fail(slot, err)
    })
    worker.on('exit', (code) => {
      if (code !== 0 && !this.closing) log('hash worker exited with code %d', code)
      this.fail(slot, StoreError.STORE_CLOSED())
    })
    return slot
  }

  private settle (slot: Slot, reply: Reply): void {
    const job = slot.job
    slot.job = null
    this.bytesHashed += reply.bytes
    if (job && job.id === reply.id) {
      if (reply.ok && job.request.kind === 'hash') this.filesHashed++
      if (reply.code === 'ECANCELED') job.reject(StoreError.STORE_CLOSED())
      else job.resolve(reply)
    }
    if (this.closing) return
    if (this.queue.length > 0) {
      this.run(slot, this.queue.shift()!)
      return
    }
    slot.worker.unref()
    slot.idleTimer = setTimeout(() => { void this.retire(slot) }, this.idleMs)
    slot.idleTimer.unref()
  }

  /** A worker died: its job fails, and the queue moves on to a fresh worker. */
  private fail (slot: Slot, err: unknown): void {
    if (!this.slots.delete(slot)) return
    if (slot.idleTimer) clearTimeout(slot.idleTimer)
    const job = slot.job
    slot.job = null
    job?.reject(err)
    if (!this.closing) this.dispatch()
  }

  private async retire (slot: Slot): Promise<void> {
    if (slot.idleTimer) clearTimeout(slot.idleTimer)
    slot.idleTimer = null
    this.slots.delete(slot)
    slot.job?.reject(StoreError.STORE_CLOSED())
    slot.job = null
    await slot.worker.terminate()
  }
}
