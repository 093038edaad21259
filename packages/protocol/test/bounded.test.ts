import { describe, expect, it } from 'vitest'
import { forEachBounded } from '../src/index.js'

describe('forEachBounded', () => {
  it('calls fn once per item, in order, never more than limit at once', async () => {
    let inFlight = 0
    let most = 0
    const started: number[] = []
    await forEachBounded([...Array(20).keys()], 3, async (i) => {
      started.push(i)
      most = Math.max(most, ++inFlight)
      // a few turns of the event loop, more for some items, so lanes overtake each other
      for (let t = 0; t < 1 + (i % 4); t++) await new Promise((resolve) => setImmediate(resolve))
      inFlight--
    })
    expect(started).toEqual([...Array(20).keys()])
    expect(most).toBe(3)
  })

  it('runs one at a time for a limit below one, nothing for no items', async () => {
    let inFlight = 0
    let most = 0
    const seen: string[] = []
    await forEachBounded(['a', 'b', 'c'], 0, async (x) => {
      most = Math.max(most, ++inFlight)
      seen.push(x)
      await new Promise((resolve) => setImmediate(resolve))
      inFlight--
    })
    expect({ seen, most }).toEqual({ seen: ['a', 'b', 'c'], most: 1 })
    let calls = 0
    await forEachBounded([], 4, async () => { calls++ })
    expect(calls).toBe(0)
  })

  it('rejects with the error of a call that fails', async () => {
    const boom = new Error('boom')
    await expect(forEachBounded([1, 2, 3], 2, async (i) => { if (i === 2) throw boom })).rejects.toBe(boom)
  })
})
