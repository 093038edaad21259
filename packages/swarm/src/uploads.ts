import { open } from 'node:fs/promises'
import { allocDataFrame, MAX_DATA_CHUNK, type ErrorCodeName, type HashRequestMessage, type Logger, type Message, type RequestMessage } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import type { PeerLimits } from './limits.js'
import type { LocalFile, LocalSource } from './types.js'

/** What the uploads need of their connection. */
export interface UploadLink {
  label: () => string
  /** The remote's hex public key. */
  key: () => string
  /** Authenticated and open: uploads stop when it is not. */
  ready: () => boolean
  send: (msg: Message) => boolean
  sendFrame: (frame: Buffer) => boolean
  /** A buffer for a frame of `size` bytes that sendFrame() sends without a copy. */
  allocFrame: (size: number) => Buffer
  /** Resolves when the connection takes writes again (it drained), or closed. */
  writable: () => Promise<void>
  /** Tells the remote why, then ends the connection. */
  fail: (code: ErrorCodeName, err: Error) => void
}

/**
 * The remote's requests to us on one connection: a queue served one range
 * at a time, straight from disk, no faster than the remote reads
 * (backpressure, dropped after uploadStallMs); piece-hash requests one at a
 * time; both under a request rate limit (BUSY beyond it).
 */
export class Uploads {
  /** File bytes uploaded to the remote (Data payloads), for the agent's totals. */
  bytesServed = 0
  /** Of those, bytes from the partial files of downloads under way (swarming). */
  bytesRelayed = 0
  private readonly queue: RequestMessage[] = []
  private uploading: RequestMessage | null = null
  private cancelledUpload = false
  /** A HashRequest of the remote's is being answered: one at a time, as each reads a whole file. */
  private hashing = false
  private requestTokens: number
  private tokensAt = Date.now()

  constructor (
    private readonly link: UploadLink,
    private readonly source: LocalSource,
    private readonly limits: Required<PeerLimits>,
    private readonly log: Logger
  ) {
    this.requestTokens = 2 * limits.requestsPerSecond
  }

  /** The connection closed: nothing more goes out. */
  clear (): void {
    this.queue.length = 0
  }

  async onHashRequest (msg: HashRequestMessage): Promise<void> {
    if (!this.takeRequestToken(msg.id)) return
    const hashPieces = this.source.hashPieces?.bind(this.source)
    if (!hashPieces || !this.source.get(msg.blake2b)) {
      this.link.send({ type: 'error', code: 'NOT_FOUND', id: msg.id, message: '' })
      return
    }
    if (msg.offset + msg.length > this.source.get(msg.blake2b)!.size) {
      this.link.send({ type: 'error', code: 'BAD_RANGE', id: msg.id, message: 'range beyond the end of the file' })
      return
    }
    if (this.hashing) {
      this.link.send({ type: 'error', code: 'BUSY', id: msg.id, message: 'one hash request at a time' })
      return
    }
    // The whole file's piece hashes: what a swarming download asks for first (see relay.ts, claim).
    if (msg.offset === 0 && msg.length === this.source.get(msg.blake2b)!.size) this.source.hashesAsked?.(msg.blake2b, this.link.key())
    this.hashing = true
    try {
      const hashes = await hashPieces(msg.blake2b, msg.offset, msg.length, msg.pieceSize)
      if (hashes) this.link.send({ type: 'hashes', id: msg.id, hashes })
      else this.link.send({ type: 'error', code: 'NOT_FOUND', id: msg.id, message: '' })
    } catch (err) {
      this.log.warn('peer.hashing-failed', { peer: this.link.label(), why: (err as Error).message })
      this.link.send({ type: 'error', code: 'INTERNAL', id: msg.id, message: 'hashing failed' })
    } finally {
      this.hashing = false
    }
  }

  /** The request rate limit: false (and BUSY sent) when the remote asks faster than requestsPerSecond. */
  private takeRequestToken (id: number): boolean {
    const now = Date.now()
    const rate = this.limits.requestsPerSecond
    this.requestTokens = Math.min(2 * rate, this.requestTokens + (now - this.tokensAt) * rate / 1000)
    this.tokensAt = now
    if (this.requestTokens < 1) {
      this.link.send({ type: 'error', code: 'BUSY', id, message: `more than ${rate} requests a second` })
      return false
    }
    this.requestTokens--
    return true
  }

  onRequest (msg: RequestMessage): void {
    if (!this.takeRequestToken(msg.id)) return
    if (this.queue.length >= this.limits.maxQueuedUploads) {
      this.link.send({ type: 'error', code: 'BUSY', id: msg.id, message: 'too many queued requests' })
      return
    }
    this.queue.push(msg)
    if (!this.uploading) void this.drainUploads()
  }

  onCancel (id: number): void {
    if (this.uploading?.id === id) this.cancelledUpload = true
    const i = this.queue.findIndex((r) => r.id === id)
    if (i !== -1) this.queue.splice(i, 1)
  }

  private async drainUploads (): Promise<void> {
    for (let req = this.queue.shift(); req && this.link.ready(); req = this.queue.shift()) {
      this.uploading = req
      this.cancelledUpload = false
      try {
        await this.upload(req)
      } catch (err) {
        this.log.warn('peer.upload-failed', { peer: this.link.label(), why: (err as Error).message })
        this.link.send({ type: 'error', code: 'INTERNAL', id: req.id, message: 'read failed' })
      }
    }
    this.uploading = null
  }

  /** Streams one range from disk, no faster than the remote takes it. */
  private async upload (req: RequestMessage): Promise<void> {
    let file = this.source.get(req.blake2b)
    // Not held whole: maybe verified pieces of a download under way (relay.ts), under a relay slot.
    const lease = file ? undefined : this.source.partial?.(req.blake2b, req.offset, req.length)
    if (lease === 'busy') {
      this.link.send({ type: 'error', code: 'BUSY', id: req.id, message: 'every relay slot is taken' })
      return
    }
    file ??= lease?.file
    const claim = file && !lease ? this.source.claim?.(req.blake2b, req.offset, req.length, this.link.key()) : undefined
    if (claim === 'busy') {
      this.link.send({ type: 'error', code: 'BUSY', id: req.id, message: 'this piece is on its way to another downloader: ask it' })
      return
    }
    const before = this.bytesServed
    try {
      await this.sendRange(req, file, lease !== undefined)
    } finally {
      claim?.()
      // The relay slot goes back however the upload ended.
      lease?.release()
      if (lease) this.bytesRelayed += this.bytesServed - before
    }
  }

  /** `partial`: from the partial file of a download under way, which is shorter than the file until its last piece lands. */
  private async sendRange (req: RequestMessage, file: LocalFile | undefined, partial: boolean): Promise<void> {
    if (!file) {
      this.link.send({ type: 'error', code: 'NOT_FOUND', id: req.id, message: '' })
      return
    }
    const end = req.offset + req.length
    if (end > file.size) {
      this.link.send({ type: 'error', code: 'BAD_RANGE', id: req.id, message: `file has ${file.size} bytes` })
      return
    }
    const fh = await open(file.path, 'r')
    // Read into the frame itself (no copies between disk and encryption), one chunk ahead of the one sealed and sent.
    const read = async (pos: number): Promise<{ frame: Buffer, body: Buffer, pos: number, full: boolean, bytesRead: number }> => {
      const n = Math.min(MAX_DATA_CHUNK, end - pos)
      const { frame, body } = allocDataFrame(req.id, pos, n, this.link.allocFrame)
      const { bytesRead } = await fh.read(body, 0, n, pos)
      return { frame, body, pos, full: bytesRead === n, bytesRead }
    }
    let next: ReturnType<typeof read> | null = null
    try {
      // A partial file is shorter until its last piece lands: only a whole one must have its size.
      if (!partial && (await fh.stat()).size !== file.size) {
        this.link.send({ type: 'error', code: 'NOT_FOUND', id: req.id, message: 'file changed on disk' })
        return
      }
      for (next = read(req.offset); next !== null;) {
        const c = await next
        next = null
        if (c.bytesRead === 0) throw new Error(`${file.path} ended at ${c.pos}, expected ${file.size} bytes`)
        if (!this.link.ready() || this.cancelledUpload) return
        const pos = c.pos + c.bytesRead
        if (pos < end) next = read(pos)
        const flowing = c.full
          ? this.link.sendFrame(c.frame)
          : this.link.send({ type: 'data', id: req.id, offset: c.pos, bytes: c.body.subarray(0, c.bytesRead) })
        this.bytesServed += c.bytesRead
        if (!flowing && !await this.drained()) {
          this.link.fail('BUSY', SwarmError.TIMEOUT('upload waiting for the peer to read', this.limits.uploadStallMs))
          return
        }
      }
    } finally {
      // A read under way ends before its file is closed.
      await next?.catch(() => {})
      await fh.close()
    }
  }

  /** Resolves true when the stream drains (or closes), false when it stays full past uploadStallMs. */
  private drained (): Promise<boolean> {
    if (!this.link.ready()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.limits.uploadStallMs)
      void this.link.writable().then(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }
}
