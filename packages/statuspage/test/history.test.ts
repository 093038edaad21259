import { describe, expect, it } from 'vitest'
import { RecentFetches, TrafficHistory } from '../src/index.js'

const totals = (fromPeers: number, upstream = 0, served = 0) => ({ fromPeers, upstream, served })

describe('TrafficHistory', () => {
  it('the first record is the baseline; each later one adds the growth since the one before', () => {
    const h = new TrafficHistory({ capacity: 4 })
    expect(h.record(totals(100, 5, 7), 1000)).toBeNull()
    expect(h.record(totals(150, 5, 17), 2000)).toEqual({ at: 2000, ms: 1000, fromPeers: 50, upstream: 0, served: 10 })
    expect(h.samples()).toHaveLength(1)
  })

  it('keeps at most capacity samples, oldest dropped first, however many arrive', () => {
    const h = new TrafficHistory({ capacity: 3 })
    for (let i = 0; i <= 1000; i++) h.record(totals(i * 10), i * 1000)
    expect(h.size).toBe(3)
    expect(h.samples().map((s) => s.at)).toEqual([998_000, 999_000, 1_000_000])
    expect(h.samples().every((s) => s.fromPeers === 10)).toBe(true)
  })

  it('a counter that went down (an agent restart) counts 0, not negative traffic', () => {
    const h = new TrafficHistory({ capacity: 8 })
    h.record(totals(1000, 50, 70), 1)
    expect(h.record(totals(10, 0, 0), 2)).toMatchObject({ fromPeers: 0, upstream: 0, served: 0 })
    expect(h.record(totals(30, 0, 5), 3)).toMatchObject({ fromPeers: 20, served: 5 })
  })

  it('ignores a record whose time does not move forward', () => {
    const h = new TrafficHistory()
    h.record(totals(0), 10)
    expect(h.record(totals(5), 10)).toBeNull()
    expect(h.record(totals(5), 9)).toBeNull()
    expect(h.size).toBe(0)
  })

  it('an hour of 10 s samples by default; a bad capacity is refused', () => {
    expect(new TrafficHistory().capacity).toBe(360)
    for (const capacity of [0, -1, 1.5, Number.NaN, 1e9]) {
      expect(() => new TrafficHistory({ capacity })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
    }
  })
})

describe('RecentFetches', () => {
  it('newest first, at most capacity, names cut to 255 characters', () => {
    const f = new RecentFetches({ capacity: 2 })
    f.add({ name: 'a', outcome: 'peers', bytes: 1 })
    f.add({ name: 'b', outcome: 'local' })
    f.add({ name: 'c'.repeat(1000), outcome: 'miss', code: 'ERR_NOT_FOUND' })
    const r = f.records()
    expect(r.map((x) => x.name.slice(0, 1))).toEqual(['c', 'b'])
    expect(r[0]!.name).toHaveLength(255)
    expect(r[0]).toMatchObject({ outcome: 'miss', code: 'ERR_NOT_FOUND', bytes: null, durationMs: null })
  })

  it('drops a record without a name or with an unknown outcome', () => {
    const f = new RecentFetches()
    expect(f.add({ name: '', outcome: 'peers' })).toBe(false)
    expect(f.add({ name: 'x', outcome: 'bogus' as 'peers' })).toBe(false)
    expect(f.records()).toEqual([])
    expect(() => new RecentFetches({ capacity: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
  })
})
