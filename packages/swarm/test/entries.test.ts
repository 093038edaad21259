import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { EntryPool } from '../src/entries.js'

describe('EntryPool', () => {
  it('shares one copy of an entry among its holders, owning its bytes, until the last lets go', () => {
    const pool = new EntryPool()
    const frame = randomBytes(256)
    const e = { name: 'a-1.tar.xz', size: 10, blake2b: frame.subarray(0, 64), sha512: frame.subarray(64, 128) }
    const one = pool.acquire(e)
    const two = pool.acquire({ ...e, blake2b: Buffer.from(e.blake2b), sha512: Buffer.from(e.sha512) })
    expect(two.entry).toBe(one.entry)
    expect(two.hex).toBe(one.hex)
    expect(one.entry.blake2b.buffer).not.toBe(frame.buffer) // copied out of the frame
    // Same digest, other name: an entry of its own.
    const renamed = pool.acquire({ ...e, name: 'b-1.tar.xz' })
    expect(renamed.entry).not.toBe(one.entry)
    expect(pool.size).toBe(2)
    expect(pool.named('a-1.tar.xz').map((n) => n.entry)).toEqual([one.entry])
    expect(pool.named('b-1.tar.xz').map((n) => n.entry)).toEqual([renamed.entry])
    pool.release(one.hex, one.entry)
    expect(pool.size).toBe(2)
    pool.release(two.hex, two.entry)
    pool.release(renamed.hex, renamed.entry)
    expect(pool.size).toBe(0)
    expect(pool.named('a-1.tar.xz')).toEqual([])
  })
})
