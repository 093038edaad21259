// The secret stream's wire on a TCP socket we accepted (an agent from before
// the data link, or a member that chose that wire): its messages, each a
// 3-byte length and that many bytes, handed to NoiseSecretStream whole.
//
// Why: a message that spans socket reads is gathered by the secret stream
// into a buffer of its own, made for it and dropped after it. With the 64 KiB
// buffer Node makes for every read of an accepted socket (only a socket we
// dial can be read into buffers of our own, see RecordReader), that is two
// dead buffers for every byte received, and V8 frees them only at its next
// scavenge: ten members flooding inventories piled up ~35 MiB of them before
// one came (bench/flood.mjs). Here such a message is gathered in a reused
// buffer, which the receiver hands back (recycleMessage) once it has taken
// what the message said.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { MAX_FRAME_SIZE } from '@distswarm/protocol'

/** A message's length prefix, little-endian. */
const LENGTH = 3
/** The secret stream's bytes around a message's plaintext: a header byte and the tag (sodium's secretstream ABYTES). */
const SEALED = 17
/** Messages up to one protocol frame are gathered in reused buffers; a larger one (which the frame decoder refuses) in one of its own, as the secret stream does. */
const MAX_REUSED = LENGTH + SEALED + 4 + MAX_FRAME_SIZE
/** Reused buffers are made in steps of this, so one fits the next message of about the same size. */
const GRAIN = 64 * 1024
/** Free buffers kept for reuse, in bytes, for the whole process: a few messages under way at once take them back and forth. */
const KEEP_BYTES = 2 * 1024 * 1024

const free: Buffer[] = []
let freeBytes = 0
/** Reused buffers handed out, and of those how many were made (not reused), in this process so far: see messageBuffers(). */
const counts = { taken: 0, made: 0 }
/** Buffers handed out, which recycleMessage() takes back. */
const out = new WeakSet<ArrayBuffer>()

/** A buffer for a message of `size` bytes (its length prefix included): a reused one when it fits. */
function messageBuffer (size: number): Buffer {
  if (size > MAX_REUSED) return Buffer.allocUnsafe(size)
  const i = free.findIndex((b) => b.byteLength >= size)
  let buf: Buffer
  if (i >= 0) {
    buf = free.splice(i, 1)[0]!
    freeBytes -= buf.byteLength
  } else {
    buf = Buffer.allocUnsafeSlow(Math.ceil(size / GRAIN) * GRAIN)
    counts.made++
  }
  counts.taken++
  out.add(buf.buffer as ArrayBuffer)
  return buf.subarray(0, size)
}

/** Messages that spanned reads, gathered in reused buffers (`taken`), and the buffers made for them (`made`), in this process so far: what reuse saves shows here. */
export function messageBuffers (): { taken: number, made: number } {
  return { ...counts }
}

/**
 * Hands back the buffer under `bytes` (a message a MessageSocket gathered,
 * or a view of it): call it only once nothing holds those bytes any more.
 * Bytes from elsewhere are ignored.
 */
export function recycleMessage (bytes: Uint8Array): void {
  const ab = bytes.buffer as ArrayBuffer
  if (!out.has(ab)) return
  out.delete(ab)
  if (freeBytes + ab.byteLength > KEEP_BYTES) return
  free.push(Buffer.from(ab))
  freeBytes += ab.byteLength
}

/**
 * What NoiseSecretStream reads and writes in place of an accepted socket:
 * the socket's bytes as whole messages, those within one read as a view of
 * it, one that spans reads gathered in a reused buffer; everything else
 * passed through.
 */
export class MessageSocket extends EventEmitter {
  private readonly head = Buffer.alloc(LENGTH)
  /** Bytes of a length prefix split across reads. */
  private headFill = 0
  /** The message under way (its prefix included) and how much of it is in. */
  private message: Buffer | null = null
  private filled = 0

  constructor (readonly socket: Socket) {
    super()
    socket.on('end', () => this.emit('end'))
    socket.on('drain', () => this.emit('drain'))
    socket.on('close', () => this.emit('close'))
    socket.on('error', (err) => { if (this.listenerCount('error') > 0) this.emit('error', err) })
    // Read once the secret stream listens (a tick after it is made): until then the bytes wait in the socket, as they would for it.
    let reading = false
    this.on('newListener', (event) => {
      if (event !== 'data' || reading) return
      reading = true
      socket.on('data', (chunk: Buffer) => this.take(chunk))
    })
  }

  get remoteAddress (): string | undefined { return this.socket.remoteAddress }
  get remotePort (): number | undefined { return this.socket.remotePort }
  get bytesRead (): number { return this.socket.bytesRead }
  write (data: Uint8Array): boolean { return this.socket.write(data) }
  end (): this { this.socket.end(); return this }
  destroy (err?: Error): this { this.socket.destroy(err); return this }
  pause (): this { this.socket.pause(); return this }
  resume (): this { this.socket.resume(); return this }

  private take (chunk: Buffer): void {
    let pos = this.continueMessage(chunk)
    const run = pos
    // Whole messages within this read go on as a view of it, together.
    while (chunk.byteLength - pos >= LENGTH) {
      const end = pos + LENGTH + chunk.readUIntLE(pos, LENGTH)
      if (end > chunk.byteLength) break
      pos = end
    }
    if (run < pos) this.emit('data', chunk.subarray(run, pos))
    if (pos < chunk.byteLength) this.startMessage(chunk.subarray(pos))
  }

  /** Takes what `chunk` begins with of the message under way (the rest of its length, its bytes), and hands it on once whole; returns how much it took. */
  private continueMessage (chunk: Buffer): number {
    let pos = 0
    if (this.headFill > 0) {
      pos = chunk.copy(this.head, this.headFill, 0, LENGTH - this.headFill)
      this.headFill += pos
      if (this.headFill < LENGTH) return pos
      this.headFill = 0
      this.message = messageBuffer(LENGTH + this.head.readUIntLE(0, LENGTH))
      this.filled = this.head.copy(this.message)
    }
    const message = this.message
    if (message === null) return pos
    const n = chunk.copy(message, this.filled, pos)
    this.filled += n
    if (this.filled < message.byteLength) return pos + n
    this.message = null
    this.emit('data', message)
    return pos + n
  }

  /** A message begins with `rest`, and goes on past this read (or its length does). */
  private startMessage (rest: Buffer): void {
    if (rest.byteLength < LENGTH) {
      this.headFill = rest.copy(this.head)
      return
    }
    this.message = messageBuffer(LENGTH + rest.readUIntLE(0, LENGTH))
    this.filled = rest.copy(this.message)
  }
}
