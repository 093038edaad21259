/**
 * The ban book: MAX_FAULTS faults ban a peer for BAN_MS, on a clock the
 * test turns. The same ban between real agents: test/e2e/bans.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { BAN_MS, MAX_FAULTS, Penalties } from '../src/index.js'

const PEER = 'ab'.repeat(32)
const OTHER = 'cd'.repeat(32)

describe('Penalties', () => {
  it('bans a peer at its third fault, for ten minutes, and only that peer', () => {
    let now = 1_000_000
    const book = new Penalties({ now: () => now })
    expect([MAX_FAULTS, BAN_MS]).toEqual([3, 10 * 60_000])
    expect(book.penalize(PEER)).toEqual({ faults: 1, banned: false, bannedUntil: null })
    expect(book.penalize(PEER)).toEqual({ faults: 2, banned: false, bannedUntil: null })
    expect(book.isBanned(PEER)).toBe(false)
    expect(book.penalize(PEER)).toEqual({ faults: 3, banned: true, bannedUntil: now + BAN_MS })
    expect(book.isBanned(PEER)).toBe(true)
    expect(book.isBanned(OTHER)).toBe(false)
    expect(book.faultsOf(PEER)).toBe(3)
    expect(book.faultsOf(OTHER)).toBe(0)
    now += BAN_MS - 1
    expect(book.isBanned(PEER)).toBe(true)
    now += 1
    expect(book.isBanned(PEER)).toBe(false)
  })

  it('a fault while banned lengthens the ban without counting a new one; after it, the next fault bans again', () => {
    let now = 0
    const book = new Penalties({ now: () => now, maxFaults: 2, banMs: 100 })
    book.penalize(PEER)
    expect(book.penalize(PEER)).toMatchObject({ banned: true, bannedUntil: 100 })
    now = 50
    expect(book.penalize(PEER)).toEqual({ faults: 3, banned: false, bannedUntil: 150 })
    now = 150
    expect(book.isBanned(PEER)).toBe(false)
    expect(book.penalize(PEER)).toEqual({ faults: 4, banned: true, bannedUntil: 250 })
  })

  it('refuses options out of range at construction, naming them', () => {
    for (const [option, init] of [['maxFaults', { maxFaults: 0 }], ['banMs', { banMs: -1 }], ['maxFaults', { maxFaults: 1.5 }], ['banMs', { banMs: Number.NaN }]] as const) {
      expect(() => new Penalties(init)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining(option) }))
    }
  })
})
