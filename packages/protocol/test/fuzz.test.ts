/**
 * Property-based fuzzing of everything that reads bytes or names from a peer
 * (the properties are in properties.ts).
 *
 * Seeded and reproducible: the seed is in the suite's name, and a failure
 * prints the seed and path that replay it. By default each property runs 500
 * inputs times its weight, a few seconds in all. At scale, with inputs per
 * second and a failing input saved as a regression case:
 *   npm run fuzz -- --runs 1000000 [--seed S]
 * which sets DISTSWARM_FUZZ_RUNS (every property runs exactly that many),
 * DISTSWARM_FUZZ_SEED and DISTSWARM_FUZZ_SAVE=1 for this file. A long run goes
 * in batches of a few seconds, each from a seed of its own (runner.ts); a
 * failure names its batch's seed, and the saved input replays without it.
 * The same runner fuzzes binpkg's Packages reader and merged index
 * (packages/binpkg/test/fuzz.test.ts) and the gateway's HTTP handling
 * (packages/gateway/test/fuzz.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { encodeFrame, FrameDecoder } from '../src/index.js'
import { expect as fastExpect, expectProtocolError, HEADER, largestAllocation, PROPERTIES, thrown } from './properties.js'
import { defineFuzzSuite, REGRESSIONS_DIR } from './runner.js'

defineFuzzSuite({ title: 'protocol', properties: PROPERTIES, regressionsDir: REGRESSIONS_DIR })

describe('fuzz helpers', () => {
  it('refuses a 4 GiB length header without allocating for it', () => {
    const dec = new FrameDecoder()
    const allocated = largestAllocation(() => {
      for (const byte of [0xff, 0xff, 0xff]) expect(dec.push(Buffer.from([byte]))).toEqual([])
      expectProtocolError(thrown(() => dec.push(Buffer.from([0xff, 1, 2, 3]))), ['ERR_FRAME_TOO_LARGE'])
    })
    expect(allocated).toBeLessThanOrEqual(2 * HEADER)
    expect(dec.pending).toBe(0)
    expectProtocolError(thrown(() => dec.push(encodeFrame(Buffer.alloc(1)))), ['ERR_FRAME_TOO_LARGE'])
  })

  it('the properties\' fast expect passes and fails exactly as vitest\'s does', () => {
    const buf = Buffer.from('ab')
    const cases: Array<[unknown, string, unknown]> = [
      [1, 'toBe', 1], [0, 'toBe', -0], [NaN, 'toBe', NaN], ['a', 'toBe', 'b'], [buf, 'toBe', Buffer.from('ab')],
      [{ a: [buf] }, 'toEqual', { a: [Buffer.from('ab')] }], [{ a: 1, b: undefined }, 'toEqual', { a: 1 }], [[1], 'toEqual', [2]],
      [buf, 'toEqual', new Uint8Array([97, 98])], [[], 'toEqual', []],
      [1, 'toBeLessThan', 2], [2, 'toBeLessThan', 2], [2, 'toBeLessThanOrEqual', 2], [3, 'toBeLessThanOrEqual', 2],
      [null, 'toBeNull', undefined], [undefined, 'toBeNull', undefined], [undefined, 'toBeUndefined', undefined], [0, 'toBeUndefined', undefined],
      [['x', 'y'], 'toContain', 'y'], [['x'], 'toContain', 'z'], ['xyz', 'toContain', 'y'],
      [new RangeError('r'), 'toBeInstanceOf', Error], [new Error('e'), 'toBeInstanceOf', RangeError],
      [[1, 2], 'toHaveLength', 2], [[1], 'toHaveLength', 2], ['ab', 'toHaveLength', 2]
    ]
    for (const [actual, matcher, arg] of cases) {
      const verdict = (make: (a: unknown) => Record<string, (x: unknown) => void>): boolean => thrown(() => make(actual)[matcher]!(arg)) === undefined
      expect(verdict(fastExpect as never), `${matcher}(${String(actual)}, ${String(arg)})`).toBe(verdict(expect as never))
    }
  })

  it('largestAllocation sees every way of making a buffer, and puts Buffer back', () => {
    const { alloc, allocUnsafe, allocUnsafeSlow, concat } = Buffer
    expect(largestAllocation(() => { Buffer.alloc(10) })).toBe(10)
    expect(largestAllocation(() => { Buffer.allocUnsafe(11) })).toBe(11)
    expect(largestAllocation(() => { Buffer.allocUnsafeSlow(12) })).toBe(12)
    expect(largestAllocation(() => { Buffer.concat([Buffer.from('ab'), Buffer.from('cde')]) })).toBe(5)
    expect(thrown(() => largestAllocation(() => { throw new Error('x') }))).toBeInstanceOf(Error)
    expect([Buffer.alloc, Buffer.allocUnsafe, Buffer.allocUnsafeSlow, Buffer.concat]).toEqual([alloc, allocUnsafe, allocUnsafeSlow, concat])
  })
})
