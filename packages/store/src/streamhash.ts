import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { StoreError } from './errors.js'
import type { Digests } from './hash.js'

/**
 * The worker's source (see pool.ts for why a string). A worker keeps running
 * hash states by id; `feed` reads the file from where that state stopped up
 * to `to` and hashes it. The bytes come back from the page cache they were
 * just written to: no copy of them crosses threads, and the receiving thread
 * never hashes.
 */
const WORKER_SOURCE = `'use strict'
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const chunk = Buffer.allocUnsafe(1024 * 1024)
const states = new Map()
function drop (id) {
  const s = states.get(id)
  if (!s) return
  states.delete(id)
  try { fs.closeSync(s.fd) } catch {}
}
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    try {
      states.set(m.id, { fd: fs.openSync(m.path, 'r'), hash: createHash(m.algo), pos: 0, error: null })
    } catch (err) {
      states.set(m.id, { fd: -1, hash: null, pos: 0, error: String(err.message) })
    }
    return
  }
  const s = states.get(m.id)
  if (!s) return
  if (m.op === 'feed') {
    if (s.error) return
    try {
      while (s.pos < m.to) {
        const n = fs.readSync(s.fd, chunk, 0, Math.min(chunk.length, m.to - s.pos), s.pos)
        if (n === 0) throw new Error('file ended at ' + s.pos + ', expected ' + m.to + ' bytes')
        s.hash.update(chunk.subarray(0, n))
        s.pos += n
      }
    } catch (err) {
      s.error = String(err.message)
    }
  } else if (m.op === 'final') {
    parentPort.postMessage(s.error ? { id: m.id, error: s.error } : { id: m.id, bytes: s.pos, digest: s.hash.digest() })
    drop(m.id)
  } else if (m.op === 'drop') {
    drop(m.id)
  }
})
`

interface Reply { id: number, error?: string, bytes?: number, digest?: Uint8Array }

/**
 * BLAKE2B (and SHA512, when a download asks for it) of files being written,
 * computed off the main thread as they grow: with two cores, one worker per
 * algorithm, so both digests keep pace with the network, and a download that
 * needs only BLAKE2B goes to the less busy one. Shared by every download of a store.
 */
export class StreamHasher {
  private readonly workers: Worker[] = []
  private readonly size: number
  private readonly logger: Logger
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void, reject: (e: unknown) => void }>()
  private nextId = 1
  private closed = false
  /** Digests under way per worker. */
  private readonly busy = [0, 0]

  constructor (init: { workers?: number, logger?: Logger } = {}) {
    this.size = Math.max(1, Math.min(2, init.workers ?? availableParallelism()))
    this.logger = init.logger ?? debugLogger('distswarm:store:hash')
  }

  /** Worker threads started so far. */
  get running (): number {
    return this.workers.filter(Boolean).length
  }

  /** Worker threads it starts at most: one, or one per digest. */
  get threads (): number {
    return this.size
  }

  /**
   * Starts hashing the file at `path` (bytes are fed as they land, with
   * HashStream.feed): its BLAKE2B, and its SHA512 too when `sha512` (a
   * download whose SHA512 is to be checked: see Expected.sha512).
   */
  open (path: string, sha512: boolean): HashStream {
    if (this.closed) throw StoreError.STORE_CLOSED()
    return new HashStream(this, path, sha512)
  }

  /** @internal */
  post (worker: number, msg: { op: string, id: number, [k: string]: unknown }): void {
    this.worker(worker).postMessage(msg)
  }

  /** @internal Asks a worker for its state's digest. */
  final (worker: number, id: number): Promise<Reply> {
    if (this.closed) return Promise.reject(StoreError.STORE_CLOSED())
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.post(worker, { op: 'final', id })
    })
  }

  /** @internal */
  newId (): number {
    return this.nextId++
  }

  /**
   * @internal Which worker computes an algorithm (counted as busy with it
   * until done()): BLAKE2B alone goes to the one with fewer digests under
   * way, the first on a tie, so one download at a time starts one worker.
   */
  workerFor (algo: 'blake2b512' | 'sha512', alone: boolean): number {
    const last = this.size - 1
    const i = algo === 'sha512' || (alone && this.busy[last]! < this.busy[0]!) ? last : 0
    this.busy[i]!++
    return i
  }

  /** @internal A digest of worker `i` ended (see workerFor). */
  done (i: number): void {
    this.busy[i]!--
  }

  private worker (i: number): Worker {
    let w = this.workers[i]
    if (w) return w
    w = new Worker(WORKER_SOURCE, { eval: true })
    // Never the reason the process stays up; a pending digest has its own handles behind it.
    w.unref()
    w.on('message', (r: Reply) => {
      const waiter = this.waiting.get(r.id)
      this.waiting.delete(r.id)
      waiter?.resolve(r)
    })
    const died = (err: unknown): void => {
      if (this.workers[i] === w) this.workers[i] = undefined as unknown as Worker
      this.logger.error('hash.stream-worker-failed', { error: (err as Error).message, waiting: this.waiting.size })
      // Its states are gone with it: every digest waited for fails.
      for (const [id, waiter] of this.waiting) { this.waiting.delete(id); waiter.reject(err) }
    }
    w.on('error', died)
    w.on('exit', (code) => { if (!this.closed) died(new Error(`exited with code ${code}`)) })
    this.workers[i] = w
    return w
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const waiter of this.waiting.values()) waiter.reject(StoreError.STORE_CLOSED())
    this.waiting.clear()
    await Promise.all(this.workers.filter(Boolean).map((w) => w.terminate()))
  }
}

/** The running digests of one file (BLAKE2B, and SHA512 if asked), fed as it grows. */
export class HashStream {
  private readonly hasher: StreamHasher
  private readonly ids: Array<{ worker: number, id: number }>
  private fed = 0
  private done = false

  constructor (hasher: StreamHasher, path: string, sha512: boolean) {
    this.hasher = hasher
    const algos = sha512 ? ['blake2b512', 'sha512'] as const : ['blake2b512'] as const
    this.ids = algos.map((algo) => {
      const s = { worker: hasher.workerFor(algo, algos.length === 1), id: hasher.newId() }
      hasher.post(s.worker, { op: 'open', id: s.id, path, algo })
      return s
    })
  }

  /** Bytes handed to the workers so far. */
  get size (): number {
    return this.fed
  }

  /** The file's bytes up to `to` are written: hash them. */
  feed (to: number): void {
    if (this.done || to <= this.fed) return
    this.fed = to
    for (const s of this.ids) this.hasher.post(s.worker, { op: 'feed', id: s.id, to })
  }

  /** The digests of the bytes fed (SHA512 empty when not computed). Ends the stream. */
  async digest (): Promise<Digests> {
    if (this.done) throw StoreError.STORE_CLOSED()
    this.end()
    const replies = await Promise.all(this.ids.map((s) => this.hasher.final(s.worker, s.id)))
    const failed = replies.find((r) => r.error !== undefined)
    if (failed) throw StoreError.READ_FAILED(failed.error ?? '')
    const buf = (u: Uint8Array | undefined): Buffer => u === undefined ? Buffer.alloc(0) : Buffer.from(u.buffer, u.byteOffset, u.byteLength)
    const [b2, s512] = replies
    return { size: b2!.bytes!, blake2b: buf(b2!.digest), sha512: buf(s512?.digest) }
  }

  /** Drops the states without a digest. Idempotent. */
  close (): void {
    if (this.done) return
    this.end()
    for (const s of this.ids) {
      try { this.hasher.post(s.worker, { op: 'drop', id: s.id }) } catch {}
    }
  }

  private end (): void {
    this.done = true
    for (const s of this.ids) this.hasher.done(s.worker)
  }
}
