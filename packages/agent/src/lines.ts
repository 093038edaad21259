import { AgentError } from './errors.js'

const NEWLINE = 0x0a

/**
 * Splits a byte stream into '\n'-terminated lines of at most `maxBytes`
 * bytes each. Only new bytes are searched for the newline, and a line is
 * decoded as UTF-8 once it is whole, so a character split across chunks
 * survives.
 */
export class LineReader {
  readonly maxBytes: number
  private parts: Buffer[] = []
  private size = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /** The lines `chunk` completes. Throws ERR_LINE_TOO_LONG as soon as a line, whole or not, exceeds maxBytes. */
  push (chunk: Buffer): string[] {
    const lines: string[] = []
    let start = 0
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      lines.push(this.take(chunk.subarray(start, nl)).toString('utf8'))
      start = nl + 1
    }
    const rest = chunk.subarray(start)
    if (rest.byteLength > 0) this.keep(rest)
    return lines
  }

  private keep (piece: Buffer): void {
    if (this.size + piece.byteLength > this.maxBytes) {
      this.parts = []
      this.size = 0
      throw AgentError.LINE_TOO_LONG(this.maxBytes)
    }
    this.parts.push(piece)
    this.size += piece.byteLength
  }

  private take (last: Buffer): Buffer {
    this.keep(last)
    const line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)
    this.parts = []
    this.size = 0
    return line
  }
}
