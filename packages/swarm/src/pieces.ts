import { createHash } from 'node:crypto'
import { PIECE_HASH_BYTES } from '@distswarm/protocol'

/** A piece's hash as HashRequest answers carry it: the first 32 bytes of its BLAKE2b-512 digest. */
export function pieceHash (chunks: readonly Uint8Array[]): Buffer {
  const h = createHash('blake2b512')
  for (const c of chunks) h.update(c)
  return h.digest().subarray(0, PIECE_HASH_BYTES)
}

/**
 * The hash of each of `count` pieces that holders agree on: with two or more
 * answers, the one a strict majority gives (else null: the piece is never
 * relayed); with one answer, that holder's word. Answers of the wrong
 * length count as no answer.
 */
export function agreedHashes (answers: ReadonlyArray<readonly Buffer[]>, count: number): Array<Buffer | null> {
  const valid = answers.filter((a) => a.length === count)
  const out: Array<Buffer | null> = []
  for (let i = 0; i < count; i++) {
    const votes = new Map<string, number>()
    for (const a of valid) {
      const h = a[i]!.toString('hex')
      votes.set(h, (votes.get(h) ?? 0) + 1)
    }
    const top = [...votes].find(([, n]) => n * 2 > valid.length)
    out.push(top ? Buffer.from(top[0], 'hex') : null)
  }
  return out
}

/** A set of piece indexes below `count`, as PieceMap carries it: piece i is bit 7 - i % 8 of byte i / 8. */
export class Bits {
  readonly bytes: Buffer
  size = 0

  constructor (readonly count: number, from?: Uint8Array) {
    this.bytes = Buffer.alloc(Math.ceil(count / 8))
    if (from) {
      this.bytes.set(from.subarray(0, this.bytes.length))
      for (let i = 0; i < count; i++) if (this.has(i)) this.size++
    }
  }

  has (i: number): boolean {
    return i >= 0 && i < this.count && (this.bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0
  }

  /** True when `i` was not in the set before. */
  add (i: number): boolean {
    if (i < 0 || i >= this.count || this.has(i)) return false
    this.bytes[i >> 3]! |= 0x80 >> (i & 7)
    this.size++
    return true
  }
}
