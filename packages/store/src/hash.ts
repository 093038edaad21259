import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'

export interface Digests {
  size: number
  blake2b: Buffer
  /** Empty when it was not computed (a download addressed by its BLAKE2B: see Expected.sha512). */
  sha512: Buffer
}

/** BLAKE2B-512 and SHA512 of one byte stream, fed in order, in one pass. */
class DualHasher {
  private readonly b2 : Hash = createHash('blake2b512')
  private readonly s512: Hash = createHash('sha512')
  size = 0

  update (chunk: Uint8Array): void {
    this.b2.update(chunk)
    this.s512.update(chunk)
    this.size += chunk.byteLength
  }

  digest (): Digests {
    return { size: this.size, blake2b: this.b2.digest(), sha512: this.s512.digest() }
  }
}

const READ_CHUNK = 1024 * 1024

/** Hashes a file with both Manifest hashes in a single streaming read. */
export async function hashFile (path: string): Promise<Digests> {
  const hasher = new DualHasher()
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
    hasher.update(chunk as Buffer)
  }
  return hasher.digest()
}
