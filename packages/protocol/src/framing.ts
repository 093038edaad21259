import { ProtocolError } from './errors.js'
import { MAX_FRAME_SIZE } from './limits.js'

const HEADER = 4

/** Prefixes `payload` with its length as a 4-byte big-endian integer. */
export function encodeFrame (payload: Uint8Array): Buffer {
  if (payload.byteLength > MAX_FRAME_SIZE) throw ProtocolError.FRAME_TOO_LARGE(payload.byteLength, MAX_FRAME_SIZE)
  const frame = Buffer.allocUnsafe(HEADER + payload.byteLength)
  frame.writeUInt32BE(payload.byteLength, 0)
  frame.set(payload, HEADER)
  return frame
}

/**
 * Splits a byte stream into frames. A frame's length is checked against the
 * limit as soon as its header arrives, before any of its body is buffered, so
 * a peer cannot make us hold more than `maxFrameSize` + one chunk.
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  private chunks: Buffer[] = []
  private buffered = 0
  private failed: ProtocolError | null = null

  constructor (maxFrameSize = MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize
  }

  /** Adds bytes and returns the frames they complete. Throws ERR_FRAME_TOO_LARGE, and keeps throwing after. */
  push (chunk: Uint8Array): Buffer[] {
    if (this.failed) throw this.failed
    if (chunk.byteLength > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      this.buffered += chunk.byteLength
    }
    const frames: Buffer[] = []
    while (this.buffered >= HEADER) {
      const length = this.peekLength()
      if (length > this.maxFrameSize) {
        this.failed = ProtocolError.FRAME_TOO_LARGE(length, this.maxFrameSize)
        this.chunks = []
        this.buffered = 0
        throw this.failed
      }
      if (this.buffered < HEADER + length) break
      const all = this.take(HEADER + length)
      frames.push(all.subarray(HEADER))
    }
    return frames
  }

  /** Bytes held for an incomplete frame. */
  get pending (): number {
    return this.buffered
  }

  private peekLength (): number {
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength >= HEADER) return first.readUInt32BE(0)
    return this.take(HEADER, true).readUInt32BE(0)
  }

  private take (n: number, peek = false): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered)
    if (peek) {
      this.chunks = [all]
      return all
    }
    const rest = all.subarray(n)
    this.chunks = rest.byteLength > 0 ? [rest] : []
    this.buffered -= n
    return all.subarray(0, n)
  }
}
