import { detach, type ManifestEntry } from './parse.js'

const DIGEST_BYTES = 64
const SLOT_BYTES = 2 * DIGEST_BYTES
const HAS_BLAKE2B = 1
const HAS_SHA512 = 2

/**
 * Entries packed by slot: both digests as 128 bytes of one Buffer, the size in
 * a Float64Array, 137 bytes in all. An object with two 128-character hex
 * strings takes ~350 bytes of heap.
 */
export class Table {
  count = 0
  private sizes: Float64Array
  private flags: Uint8Array
  private digests: Buffer
  private readonly other = new Map<number, Record<string, string>>()

  constructor (capacity: number) {
    this.sizes = new Float64Array(capacity)
    this.flags = new Uint8Array(capacity)
    this.digests = Buffer.alloc(capacity * SLOT_BYTES)
  }

  add (e: ManifestEntry): number {
    if (this.count === this.sizes.length) this.resize(Math.max(1024, this.count * 2))
    const slot = this.count++
    this.set(slot, e)
    return slot
  }

  set (slot: number, e: ManifestEntry): void {
    const at = slot * SLOT_BYTES
    this.sizes[slot] = e.size
    this.flags[slot] = (e.blake2b !== null ? HAS_BLAKE2B : 0) | (e.sha512 !== null ? HAS_SHA512 : 0)
    this.digests.fill(0, at, at + SLOT_BYTES)
    if (e.blake2b !== null) this.digests.write(e.blake2b, at, DIGEST_BYTES, 'hex')
    if (e.sha512 !== null) this.digests.write(e.sha512, at + DIGEST_BYTES, DIGEST_BYTES, 'hex')
    if (e.other === undefined) {
      this.other.delete(slot)
    } else {
      const other: Record<string, string> = {}
      for (const [algo, hex] of Object.entries(e.other)) other[detach(algo)] = detach(hex)
      this.other.set(slot, other)
    }
  }

  get (slot: number, name: string): ManifestEntry {
    const at = slot * SLOT_BYTES
    const flags = this.flags[slot]!
    const e: ManifestEntry = {
      name,
      size: this.sizes[slot]!,
      blake2b: (flags & HAS_BLAKE2B) !== 0 ? this.digests.toString('hex', at, at + DIGEST_BYTES) : null,
      sha512: (flags & HAS_SHA512) !== 0 ? this.digests.toString('hex', at + DIGEST_BYTES, at + SLOT_BYTES) : null
    }
    const other = this.other.get(slot)
    if (other !== undefined) e.other = { ...other }
    return e
  }

  /** Drops the unused capacity once loading is done. */
  trim (): void {
    if (this.count < this.sizes.length) this.resize(this.count)
  }

  private resize (capacity: number): void {
    const sizes = new Float64Array(capacity)
    sizes.set(this.sizes.subarray(0, this.count))
    const flags = new Uint8Array(capacity)
    flags.set(this.flags.subarray(0, this.count))
    const digests = Buffer.alloc(capacity * SLOT_BYTES)
    this.digests.copy(digests, 0, 0, this.count * SLOT_BYTES)
    this.sizes = sizes
    this.flags = flags
    this.digests = digests
  }
}

