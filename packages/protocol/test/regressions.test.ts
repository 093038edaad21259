/**
 * Replays every input a fuzz run saved (test/regressions/*.json): a bug a
 * long run once found stays fixed, whatever seed or arbitraries come later.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { PROPERTIES, thrown, type FuzzProperty } from './properties.js'
import { batchSeed, fromJson, loadRegressions, REGRESSIONS_DIR, replay, replayRegressions, runProperty, toJson } from './runner.js'

replayRegressions(PROPERTIES, REGRESSIONS_DIR)

describe('the fuzz runner', () => {
  it('a failing run saves its shrunk input, which replays to the same failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distswarm-fuzz-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const flawed: FuzzProperty<[Uint8Array, Buffer, number]> = {
      group: 'test',
      name: 'a decoder that chokes on 0xff after byte 3',
      weight: 1,
      input: fc.tuple(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a)), fc.double()),
      check: ([bytes]) => { if (bytes.subarray(3).includes(0xff)) throw new Error('choked') }
    }
    const err = await runProperty(flawed, { seed: 42, runs: 10_000, saveDir: dir }).catch((e: unknown) => e)
    expect(String(err)).toMatch(/seed: 42[\s\S]*saved as/)
    const [file, ...more] = readdirSync(dir)
    expect(more).toEqual([])
    const [saved] = loadRegressions(dir)
    expect(saved!.file).toBe(file)
    expect(saved!.regression).toMatchObject({ property: flawed.name, seed: 42, error: 'choked' })
    // Shrunk to the smallest input that fails, with its types back.
    const [bytes, buf] = fromJson(saved!.regression.input) as [Uint8Array, Buffer, number]
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect([...bytes]).toEqual([0, 0, 0, 0xff])
    expect(Buffer.isBuffer(buf)).toBe(true)
    expect(thrown(() => replay(flawed, saved!.regression))).toMatchObject({ message: 'choked' })
    // A fixed check passes the same case.
    expect(thrown(() => replay({ ...flawed, check: () => {} }, saved!.regression))).toBeUndefined()
  })

  it('a run goes on in batches, each from its own seed, and a failure in a later batch names that batch\'s seed', async () => {
    const seen: number[] = []
    const counting: FuzzProperty<number> = { group: 'test', name: 'counts', weight: 1, input: fc.integer(), check: (n) => { seen.push(n) } }
    const r = await runProperty(counting, { seed: 7, runs: 3000, batchMs: 1 })
    expect(r.runs).toBe(3000)
    expect(seen).toHaveLength(3000)
    expect(batchSeed(7, 0)).toBe(7)
    expect(new Set(Array.from({ length: 100 }, (_, k) => batchSeed(7, k))).size).toBe(100)
    // A check that fails on the 2500th input it sees: found in a batch after the first, and replayable from its seed.
    let calls = 0
    const late: FuzzProperty<number> = { group: 'test', name: 'late', weight: 1, input: fc.integer(), check: () => { if (++calls >= 2500) throw new Error('late') } }
    const err = String(await runProperty(late, { seed: 7, runs: 3000, batchMs: 1 }).catch((e: unknown) => e))
    const seed = Number(/seed: (\d+)/.exec(err)?.[1])
    expect(err).toMatch(/batch [1-9]/)
    expect(seed).not.toBe(7)
    expect(Array.from({ length: 3000 }, (_, k) => batchSeed(7, k))).toContain(seed)
  })

  it('an async property (a server, a socket) is awaited: its failure is found, saved, and replays as a rejection', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distswarm-fuzz-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const slow: FuzzProperty<number> = {
      group: 'test',
      name: 'rejects a number above 1000, later',
      weight: 1,
      async: true,
      input: fc.integer({ min: 0, max: 5000 }),
      check: async (n) => {
        await new Promise((resolve) => setImmediate(resolve))
        if (n > 1000) throw new Error('too big')
      }
    }
    expect(String(await runProperty(slow, { seed: 3, runs: 1000, saveDir: dir }).catch((e: unknown) => e))).toMatch(/Got: too big/)
    const [saved] = loadRegressions(dir)
    expect(fromJson(saved!.regression.input)).toBe(1001)
    await expect(replay(slow, saved!.regression)).rejects.toThrow('too big')
    // The same check run as a sync property would pass every input unawaited: refused instead.
    const unmarked = { ...slow, async: false }
    expect(String(await runProperty(unmarked, { seed: 3, runs: 10 }).catch((e: unknown) => e))).toMatch(/returned a promise: mark it async: true/)
  })

  it('toJson keeps what JSON alone loses', () => {
    const value = [Buffer.from([1, 2]), new Uint8Array([3]), -0, NaN, Infinity, undefined, 2n ** 70n, { a: '\ud800', b: [Buffer.alloc(0)] }]
    const back = fromJson(JSON.parse(JSON.stringify(toJson(value)))) as unknown[]
    expect(Buffer.isBuffer(back[0])).toBe(true)
    expect(Buffer.isBuffer(back[1])).toBe(false)
    expect(back).toEqual(value)
    expect(Object.is(back[2], -0)).toBe(true)
  })
})
