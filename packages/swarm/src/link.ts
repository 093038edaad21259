// The data link: the wire of the TCP data path (fast-path links and static
// peers). A Noise XX handshake with the agents' own key pairs (as
// hyperswarm's secret stream does), then records sealed with
// ChaCha20-Poly1305 in place (aead.ts), in reused buffers. Versioned by a preamble; an
// agent that predates it speaks hyperswarm's secret stream on the same port,
// and DataPath still takes and makes such connections (see docs/architecture.md).
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import Noise from 'noise-handshake'
import curve from 'noise-curve-ed'
import { MAX_FRAME_SIZE } from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import { open, seal, NONCE_BYTES as NONCE, TAG_BYTES as TAG } from './aead.js'
import type { KeyPair } from './types.js'

/** The data link version this agent speaks. */
export const LINK_VERSION = 1
/**
 * What an initiator sends first: a 3-byte little-endian length of 5 and 5
 * bytes, `DSWL` and the version. To a secret-stream responder (an older
 * agent) it is a 5-byte Noise message, which it rejects and closes at once;
 * a secret-stream initiator's first byte is 32 (its ephemeral key's length),
 * never 5: that first byte tells a responder which of the two it talks to.
 */
const PREAMBLE = Buffer.from([5, 0, 0, 0x44, 0x53, 0x57, 0x4c, LINK_VERSION])
export const PREAMBLE_FIRST_BYTE = 5
/** A handshake message is far smaller; the bound stops a peer making us buffer more. */
const MAX_HANDSHAKE_MESSAGE = 4096
const HEADER = 4
/** The largest record: one protocol frame (MAX_FRAME_SIZE) and its 4-byte length. */
export const MAX_RECORD = MAX_FRAME_SIZE + 4
/** Send buffers of this size are reused: a Data frame of MAX_DATA_CHUNK with its headers fits. */
const POOL_SIZE = 1024 * 1024 + 256
/** Send buffers kept for reuse per link. */
const POOL_KEEP = 4
/** Buffers from alloc() written in place when they come back to write(), the newest (see DataLink.alloc). */
const MAX_PENDING = 4
/**
 * Receive buffers kept for reuse, for the whole process, while records
 * arrive: what a transfer holds ahead of its writes (8 pieces of 4 MiB) and
 * its requests in flight fit, so none is dropped and made again (a dropped
 * one is garbage until a GC, and 1 GiB of them set off one every ~25 MiB).
 * Once none has been asked for in RECV_IDLE_MS, all but RECV_KEEP_IDLE go.
 */
const RECV_KEEP = 40
const RECV_KEEP_IDLE = 4
const RECV_IDLE_MS = 5000

/** Receive buffers (of POOL_SIZE) free for reuse, and those handed out, which recycle() takes back. */
const recvFree: ArrayBuffer[] = []
const recvOut = new WeakSet<ArrayBuffer>()
let recvTakenAt = 0
let recvTrim: NodeJS.Timeout | null = null

/** Lets the free receive buffers go, but a few, once records stopped arriving. */
function trimRecvFree (): void {
  recvTrim = null
  const idle = Date.now() - recvTakenAt
  if (idle < RECV_IDLE_MS) recvTrim = setTimeout(trimRecvFree, RECV_IDLE_MS - idle).unref()
  else if (recvFree.length > RECV_KEEP_IDLE) recvFree.length = RECV_KEEP_IDLE
}

/** Records up to this size (requests, acknowledgements, pings) get a buffer of their own, not a pooled 1 MiB one. */
const SMALL_RECORD = 64 * 1024

/** A buffer for a received record of `size` bytes: a reused one when it fits. */
function recvBuffer (size: number): Buffer {
  if (size > POOL_SIZE || size <= SMALL_RECORD) return Buffer.allocUnsafe(size)
  recvTakenAt = Date.now()
  // Not zeroed: the record is read into it whole before any byte of it is used.
  const ab = recvFree.pop() ?? Buffer.allocUnsafeSlow(POOL_SIZE).buffer as ArrayBuffer
  recvOut.add(ab)
  return Buffer.from(ab, 0, size)
}

/**
 * Marks the buffer under `bytes` as never to be reused: its record carried
 * more than one frame (or part of one), so views of it may outlive any one
 * message. Only a peer breaking the protocol sends such records.
 */
export function disown (bytes: Uint8Array): void {
  recvOut.delete(bytes.buffer as ArrayBuffer)
}

/**
 * Hands back the buffer under `bytes` (a Data payload a link received) for
 * the next record: call it only when nothing holds those bytes any more
 * (they are written to disk). Bytes from elsewhere are ignored.
 */
export function recycle (bytes: Uint8Array): void {
  const ab = bytes.buffer as ArrayBuffer
  if (!recvOut.has(ab)) return
  recvOut.delete(ab)
  if (recvFree.length < RECV_KEEP) recvFree.push(ab)
  recvTrim ??= setTimeout(trimRecvFree, RECV_IDLE_MS).unref()
}

/**
 * Reads a dialled data link's records straight into the buffers they are
 * decrypted in, through net.connect()'s `onread`: no copy, and no 64 KiB
 * buffer allocated per read, whose garbage otherwise set off a major GC
 * every ~25 MiB received (41 per GiB, ~0.7 s, in a receiver's trace). Only
 * a socket we dial can be read this way (a server's sockets take no
 * `onread`). Give `onread` to connect(), then this to the DataLink.
 */
export class RecordReader {
  private link: DataLink | null = null
  /** Reads that are not a record's own bytes: the handshake, or a header begun by a chunk read before. */
  private readonly scratch = Buffer.allocUnsafe(64 * 1024)
  private readonly early: Buffer[] = []
  readonly onread = {
    buffer: (): Uint8Array => this.link !== null ? this.link.readTarget(this.scratch) : this.scratch,
    callback: (n: number, buf: Uint8Array): boolean => {
      if (this.link === null) this.early.push(Buffer.from(buf.subarray(0, n)))
      else if (buf === this.scratch) this.link.takeChunk(this.scratch.subarray(0, n))
      else this.link.tookInPlace(n)
      return true
    }
  }

  /** @internal */
  bind (link: DataLink): void {
    this.link = link
    for (const chunk of this.early.splice(0)) link.takeChunk(chunk)
  }
}

function counterNonce (nonce: Buffer, n: number): void {
  // 96-bit nonce: 4 zero bytes, then a 64-bit little-endian counter (2^53 records is never reached).
  nonce.writeUInt32LE(n % 0x100000000, 4)
  nonce.writeUInt32LE(Math.floor(n / 0x100000000), 8)
}

/**
 * A SecretStream over a TCP socket (see types.ts): what Peer needs. Each
 * record is a 4-byte little-endian plaintext length (authenticated as
 * associated data), the ciphertext, and a 16-byte tag; nonces count records,
 * one key per direction from the handshake. A record that fails its tag
 * ends the connection.
 */
export class DataLink extends EventEmitter {
  readonly rawStream: Socket
  readonly isInitiator: boolean
  publicKey: Buffer
  remotePublicKey: Buffer = Buffer.alloc(0)
  handshakeHash: Buffer = Buffer.alloc(0)
  /** Resolves true once the handshake is done, false when the connection ended first. */
  readonly opened: Promise<boolean>
  /** The remote answered nothing at all before the connection ended: an agent without the data link, on the initiator side. */
  silentRefusal = false
  private resolveOpened!: (ok: boolean) => void
  private noise: {
    send: (payload?: Uint8Array) => Uint8Array
    recv: (buf: Uint8Array) => Uint8Array
    complete: boolean
    tx: Uint8Array | null
    rx: Uint8Array | null
    hash: Uint8Array | null
    rs: Uint8Array | null
  } | null
  private txKey: Buffer | null = null
  private rxKey: Buffer | null = null
  private readonly txNonce = Buffer.alloc(NONCE)
  private readonly rxNonce = Buffer.alloc(NONCE)
  private sent = 0
  private received = 0
  /** Bytes of an incomplete handshake message, preamble or record header. */
  private small: Buffer = Buffer.alloc(0)
  /** The record being received and how much of it is in. */
  private record: Buffer | null = null
  private filled = 0
  /** Read in place (RecordReader): a record's header, and how much of it is in. */
  private readonly header = Buffer.alloc(HEADER)
  private headerFill = 0
  /** Records that came right behind the handshake wait to be handed on (see takeChunk): until then the state says nothing of where the next read belongs. */
  private deferred = false
  private readonly free: Buffer[] = []
  /** Buffers alloc() handed out, not written yet (the last few: an upload reads one ahead of the one it sends). */
  private readonly pending: Array<{ plain: Buffer, record: Buffer }> = []
  /** The responder has yet to read the initiator's preamble. */
  private awaitingPreamble: boolean
  private closed = false
  private connected: boolean

  /** `reader`: the RecordReader whose `onread` the socket was opened with; without one, the socket's 'data' chunks are copied into records. */
  constructor (socket: Socket, initiator: boolean, keyPair: KeyPair, reader?: RecordReader) {
    super()
    this.rawStream = socket
    this.isInitiator = initiator
    this.publicKey = keyPair.publicKey
    this.awaitingPreamble = !initiator
    this.connected = !socket.connecting
    if (socket.connecting) socket.once('connect', () => { this.connected = true })
    this.opened = new Promise((resolve) => { this.resolveOpened = resolve })
    const noise = new Noise('XX', initiator, keyPair, { curve })
    noise.initialise(PREAMBLE)
    this.noise = noise
    if (reader) reader.bind(this)
    else socket.on('data', (chunk: Buffer) => this.takeChunk(chunk))
    socket.on('drain', () => this.emit('drain'))
    socket.on('error', (err: Error) => this.emit('error', err))
    socket.on('close', () => this.onClose())
    if (initiator) {
      socket.write(PREAMBLE)
      this.sendHandshake(noise.send())
    }
  }

  /**
   * A buffer for a message of `length` bytes that write() then seals where
   * it lies: no copy, and the buffer is reused once the socket sent it.
   * The last MAX_PENDING buffers handed out are written in place.
   */
  alloc (length: number): Buffer {
    const record = this.take(length)
    const plain = record.subarray(HEADER, HEADER + length)
    if (this.pending.push({ plain, record }) > MAX_PENDING) this.pending.shift()
    return plain
  }

  write (data: Uint8Array): boolean {
    if (this.closed || this.txKey === null) return false
    let record: Buffer
    const i = this.pending.findIndex((p) => p.plain === data)
    if (i >= 0) {
      record = this.pending[i]!.record
      this.pending.splice(i, 1)
    } else {
      record = this.take(data.byteLength)
      record.set(data, HEADER)
    }
    const length = data.byteLength
    record.writeUInt32LE(length, 0)
    counterNonce(this.txNonce, this.sent++)
    const body = record.subarray(HEADER, HEADER + length)
    if (!seal(this.txKey, this.txNonce, record.subarray(0, HEADER), body, record.subarray(HEADER + length, HEADER + length + TAG))) {
      this.fail(SwarmError.CIPHER_FAILED())
      return false
    }
    return this.rawStream.write(record.subarray(0, HEADER + length + TAG), () => this.give(record))
  }

  end (): void {
    this.rawStream.end()
  }

  destroy (err?: Error): void {
    this.rawStream.destroy(err)
  }

  private take (length: number): Buffer {
    const size = HEADER + length + TAG
    if (size > POOL_SIZE) return Buffer.allocUnsafe(size)
    if (size <= 4096) return Buffer.allocUnsafe(size)
    return this.free.pop() ?? Buffer.allocUnsafeSlow(POOL_SIZE)
  }

  private give (record: Buffer): void {
    if (record.byteLength === POOL_SIZE && this.free.length < POOL_KEEP && !this.closed) this.free.push(record)
  }

  private sendHandshake (message: Uint8Array): void {
    const frame = Buffer.allocUnsafe(3 + message.byteLength)
    frame.writeUIntLE(message.byteLength, 0, 3)
    frame.set(message, 3)
    this.rawStream.write(frame)
  }

  private fail (err: Error): void {
    this.destroy(err)
  }

  /** @internal RecordReader: where the next read goes. The rest of the record under way, or its header; else `scratch`, whose bytes come back to takeChunk(). */
  readTarget (scratch: Buffer): Uint8Array {
    if (this.noise !== null || this.closed || this.deferred || this.small.byteLength > 0) return scratch
    if (this.record === null) return this.header.subarray(this.headerFill)
    return this.record.subarray(this.filled)
  }

  /** @internal RecordReader: `n` bytes were read where readTarget() said. */
  tookInPlace (n: number): void {
    if (this.closed) return
    if (this.record === null) {
      this.headerFill += n
      if (this.headerFill < HEADER) return
      this.headerFill = 0
      this.beginRecord(this.header)
      return
    }
    this.filled += n
    if (this.filled === this.record.byteLength) this.endRecord()
  }

  /** @internal Bytes off the socket, copied into the records they belong to. */
  takeChunk (chunk: Buffer): void {
    if (this.closed) return
    if (this.noise !== null) {
      chunk = this.onHandshakeBytes(chunk)
      if (this.noise !== null || chunk.byteLength === 0) return
      // Records right behind the handshake wait for whoever takes the opened link to listen.
      const rest = Buffer.from(chunk)
      this.rawStream.pause()
      this.deferred = true
      setImmediate(() => {
        this.deferred = false
        this.onRecordBytes(rest)
        if (!this.closed) this.rawStream.resume()
      })
      return
    }
    this.onRecordBytes(chunk)
  }

  /** Takes handshake bytes; returns what follows the handshake in this chunk. */
  private onHandshakeBytes (chunk: Buffer): Buffer {
    let buf = this.small.byteLength > 0 ? Buffer.concat([this.small, chunk]) : chunk
    for (;;) {
      if (this.awaitingPreamble) {
        if (buf.byteLength < PREAMBLE.byteLength) break
        if (!buf.subarray(0, PREAMBLE.byteLength - 1).equals(PREAMBLE.subarray(0, PREAMBLE.byteLength - 1))) {
          this.fail(SwarmError.PROTOCOL_VIOLATION('not a distswarm data link'))
          return Buffer.alloc(0)
        }
        const version = buf[PREAMBLE.byteLength - 1]
        if (version !== LINK_VERSION) {
          this.fail(SwarmError.PROTOCOL_VIOLATION(`data link version ${String(version)}, we speak ${LINK_VERSION}`))
          return Buffer.alloc(0)
        }
        this.awaitingPreamble = false
        buf = buf.subarray(PREAMBLE.byteLength)
        continue
      }
      if (buf.byteLength < 3) break
      const length = buf.readUIntLE(0, 3)
      if (length > MAX_HANDSHAKE_MESSAGE) {
        this.fail(SwarmError.PROTOCOL_VIOLATION(`handshake message of ${length} bytes`))
        return Buffer.alloc(0)
      }
      if (buf.byteLength < 3 + length) break
      const message = buf.subarray(3, 3 + length)
      buf = buf.subarray(3 + length)
      if (!this.onHandshakeMessage(message)) return Buffer.alloc(0)
      if (this.noise === null) {
        this.small = Buffer.alloc(0)
        return buf
      }
    }
    this.small = Buffer.from(buf)
    return Buffer.alloc(0)
  }

  private onHandshakeMessage (message: Buffer): boolean {
    const noise = this.noise!
    try {
      noise.recv(message)
      if (!noise.complete) this.sendHandshake(noise.send())
    } catch (err) {
      this.fail(SwarmError.AUTH_FAILED(`Noise handshake failed: ${(err as Error).message}`))
      return false
    }
    if (noise.complete) this.established()
    return true
  }

  private established (): void {
    const noise = this.noise!
    this.noise = null
    // Copies: the handshake's buffers may be views of a larger one.
    this.txKey = Buffer.from(noise.tx!.subarray(0, 32))
    this.rxKey = Buffer.from(noise.rx!.subarray(0, 32))
    this.handshakeHash = Buffer.from(noise.hash!)
    this.remotePublicKey = Buffer.from(noise.rs!)
    this.resolveOpened(true)
  }

  private onRecordBytes (chunk: Buffer): void {
    let pos = 0
    while (pos < chunk.byteLength && !this.closed) {
      if (this.record === null) {
        const need = HEADER - this.small.byteLength
        if (chunk.byteLength - pos < need) {
          this.small = Buffer.concat([this.small, chunk.subarray(pos)])
          return
        }
        const header = this.small.byteLength > 0 ? Buffer.concat([this.small, chunk.subarray(pos, pos + need)]) : chunk.subarray(pos, pos + HEADER)
        pos += need
        this.small = Buffer.alloc(0)
        if (!this.beginRecord(header)) return
      }
      const record = this.record!
      const n = Math.min(record.byteLength - this.filled, chunk.byteLength - pos)
      chunk.copy(record, this.filled, pos, pos + n)
      this.filled += n
      pos += n
      if (this.filled < record.byteLength || !this.endRecord()) return
    }
  }

  /** A record's 4-byte header is in: its buffer, or false when the length is past the bound (the link failed). */
  private beginRecord (header: Buffer): boolean {
    const length = header.readUInt32LE(0)
    if (length > MAX_RECORD) {
      this.fail(SwarmError.PROTOCOL_VIOLATION(`record of ${length} bytes, more than ${MAX_RECORD}`))
      return false
    }
    // Its plaintext is handed up and may be held (a piece waiting to be written) until recycle().
    this.record = recvBuffer(HEADER + length + TAG)
    header.copy(this.record, 0, 0, HEADER)
    this.filled = HEADER
    return true
  }

  /** The record under way is in whole: opened in place and handed up; false when it failed its tag (the link failed). */
  private endRecord (): boolean {
    const record = this.record!
    this.record = null
    const length = record.byteLength - HEADER - TAG
    const body = record.subarray(HEADER, HEADER + length)
    counterNonce(this.rxNonce, this.received++)
    if (!open(this.rxKey!, this.rxNonce, record.subarray(0, HEADER), body, record.subarray(HEADER + length))) {
      this.fail(SwarmError.PROTOCOL_VIOLATION('a record failed its authentication tag'))
      return false
    }
    // An empty record is a keepalive: nothing to hand up.
    if (length > 0) this.emit('data', body)
    return true
  }

  private onClose (): void {
    if (this.closed) return
    this.closed = true
    this.free.length = 0
    if (this.noise !== null) {
      this.silentRefusal = this.isInitiator && this.connected && this.rawStream.bytesRead === 0
      this.resolveOpened(false)
    }
    this.emit('close')
  }
}
