import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { debugLogger, type Logger, type PieceRange } from '@distswarm/protocol'
import { StoreError } from './errors.js'
import { WORKER_SOURCE } from './pool-worker.js'
import type { ListedFile, StatKey } from './scan.js'

const READ_CHUNK = 1024 * 1024
/**
 * Jobs posted to one worker at a time: the one it runs and the next, so it
 * starts that one without waiting for the main thread (busy loading modules
 * or Manifests while the first index runs) to read a reply and post again.
 */
const PIPELINE_DEPTH = 2

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
  logger?: Logger
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
  | { kind: 'hash', path: string, dev?: bigint, ino?: bigint, blake2bOnly?: boolean }
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
  /** Posted and not yet answered, in the order the worker runs them. */
  jobs: Job[]
  idleTimer: NodeJS.Timeout | null
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

export function defaultHashWorkers (): number {
  return Math.min(2, availableParallelism())
}

/** Fewest threads a Store hashes with: one for files, one for downloads. */
export const MIN_HASH_WORKERS = 2

/**
 * How a Store's `hashWorkers` (its total hash threads) are shared: downloads
 * get one thread when the total is under 4 (both digests then on one), else
 * two (one per digest, so both keep pace with the network); files being
 * indexed get the rest. The default total, twice defaultHashWorkers(), gives
 * each side what it had when each took the count for itself.
 */
export function splitHashWorkers (total = 2 * defaultHashWorkers()): { files: number, streams: number } {
  const streams = total >= 4 ? 2 : 1
  return { files: Math.max(1, total - streams), streams }
}

/**
 * Hashes files (and lists dirs) in worker threads, so a big DISTDIR never
 * ties up the event loop. Each worker runs one job at a time and holds at
 * most one more (PIPELINE_DEPTH); a job goes to an idle worker first, then
 * to a new one, then behind a running one. Jobs wait in FIFO order; callers
 * bound how many they submit (the Store keeps a small window in flight), so
 * the queue stays short.
 */
export class HashPool {
  readonly size: number
  /** Files read to the end and hashed. */
  filesHashed = 0
  /** Bytes read from files, including reads that were abandoned because the file changed. */
  bytesHashed = 0
  private readonly idleMs: number
  private readonly logger: Logger
  private readonly stop = new Int32Array(new SharedArrayBuffer(4))
  private readonly slots = new Set<Slot>()
  private readonly queue: Job[] = []
  private nextId = 1
  private closing: Promise<void> | null = null

  constructor (init: HashPoolInit = {}) {
    this.size = Math.max(1, Math.floor(init.size ?? defaultHashWorkers()))
    this.idleMs = init.idleMs ?? 30_000
    this.logger = init.logger ?? debugLogger('distswarm:store:hash')
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

  /** The BLAKE2B of `path` alone (with `expect`, only when it is still that dev/inode); rejects with the errno-style code when it cannot be read whole. */
  async blake2b (path: string, expect?: { dev: bigint, ino: bigint }): Promise<Buffer> {
    const reply = await this.submit({ kind: 'hash', path, blake2bOnly: true, ...expect })
    if (reply.ok) return asBuffer(reply.blake2b!)
    throw Object.assign(new Error(`cannot hash ${path}: ${reply.message}`), { code: reply.code })
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

  /**
   * Starts every worker now rather than on the first jobs, so their start-up
   * overlaps whatever the caller does before it has work (the Store: opening
   * the cache dir and loading the hash index). Idle ones retire after idleMs.
   */
  warm (): void {
    if (this.closing) return
    while (this.slots.size < this.size) {
      let slot: Slot
      try {
        slot = this.spawn()
      } catch (err) {
        // dispatch() tries again, and reports it, when there is work.
        this.logger.debug('hash.warm-failed', { error: (err as Error).message })
        return
      }
      this.idle(slot)
    }
  }

  private submit (request: Request): Promise<Reply> {
    if (this.closing) return Promise.reject(StoreError.STORE_CLOSED())
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, request, resolve, reject })
      this.dispatch()
    })
  }

  /** Workers with a job. */
  get busy (): number {
    let n = 0
    for (const s of this.slots) if (s.jobs.length > 0) n++
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
    const running = [...this.slots].flatMap((s) => s.jobs)
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
      for (const s of this.slots) if (s.jobs.length === 0) { slot = s; break }
      if (!slot && this.slots.size >= this.size) {
        for (const s of this.slots) if (s.jobs.length < PIPELINE_DEPTH && (!slot || s.jobs.length < slot.jobs.length)) slot = s
        if (!slot) return
      }
      if (!slot) {
        try {
          slot = this.spawn()
        } catch (err) {
          // No thread to be had (EAGAIN and the like): fail the waiting jobs rather than strand them.
          this.logger.error('hash.worker-failed', { error: (err as Error).message, workers: this.slots.size })
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
    slot.jobs.push(job)
    // Referenced only while busy: an idle pool never keeps the process alive.
    slot.worker.ref()
    slot.worker.postMessage({ id: job.id, ...job.request })
  }

  private spawn (): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { stop: this.stop, chunk: READ_CHUNK } })
    const slot: Slot = { worker, jobs: [], idleTimer: null }
    this.slots.add(slot)
    worker.on('message', (reply: Reply) => this.settle(slot, reply))
    worker.on('error', (err) => {
      this.logger.error('hash.worker-failed', { error: err.message })
      this.fail(slot, err)
    })
    worker.on('exit', (code) => {
      // A retired (idle) worker is out of the set already: its exit is no news.
      if (!this.closing && this.slots.has(slot)) this.logger.error('hash.worker-exited', { code })
      this.fail(slot, StoreError.STORE_CLOSED())
    })
    return slot
  }

  private settle (slot: Slot, reply: Reply): void {
    // A worker answers in the order it was posted to.
    const job = slot.jobs[0]?.id === reply.id ? slot.jobs.shift() : undefined
    this.bytesHashed += reply.bytes
    if (job) {
      if (reply.ok && job.request.kind === 'hash') this.filesHashed++
      if (reply.code === 'ECANCELED') job.reject(StoreError.STORE_CLOSED())
      else job.resolve(reply)
    }
    if (this.closing) return
    this.dispatch()
    if (slot.jobs.length === 0) this.idle(slot)
  }

  /** A worker with nothing to do: it no longer keeps the process alive, and retires after idleMs. */
  private idle (slot: Slot): void {
    slot.worker.unref()
    slot.idleTimer = setTimeout(() => { void this.retire(slot) }, this.idleMs)
    slot.idleTimer.unref()
  }

  /** A worker died: the job it ran fails, and the queue moves on to a fresh worker. */
  private fail (slot: Slot, err: unknown): void {
    if (!this.slots.delete(slot)) return
    if (slot.idleTimer) clearTimeout(slot.idleTimer)
    // The job it ran fails; the one it held had not started and goes back to the head of the queue.
    const [running, ...waiting] = slot.jobs.splice(0)
    running?.reject(err)
    if (this.closing) {
      for (const job of waiting) job.reject(StoreError.STORE_CLOSED())
      return
    }
    this.queue.unshift(...waiting)
    this.dispatch()
  }

  private async retire (slot: Slot): Promise<void> {
    if (slot.idleTimer) clearTimeout(slot.idleTimer)
    slot.idleTimer = null
    this.slots.delete(slot)
    for (const job of slot.jobs.splice(0)) job.reject(StoreError.STORE_CLOSED())
    await slot.worker.terminate()
  }
}
