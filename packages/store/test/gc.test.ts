import { describe, expect, it } from 'vitest'
import { link, mkdir, readdir, readFile, rename, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { planEviction, type EvictionCandidate, type LocalFile } from '../src/index.js'
import { USES_FILE } from '../src/gc.js'
import { b2, useTempRoot } from './util.js'

const KiB = 1024

/** A candidate: on one peer, referenced, not pinned, unless told otherwise. */
function file (name: string, usedAt: number, more: Partial<EvictionCandidate> = {}): EvictionCandidate {
  return { path: `/cache/${name}`, name, size: 100 * KiB, blake2b: name, usedAt, referenced: true, peers: 1, pinned: false, ...more }
}

describe('planEviction: the order files leave the cache', () => {
  const files = [
    file('old-ref', 100),
    file('solo-unref', 50, { referenced: false, peers: 0 }),
    file('solo-ref', 10, { peers: 0 }),
    file('new-unref', 400, { referenced: false }),
    file('mid-ref', 200),
    file('newest-ref', 500)
  ]

  it('takes unreferenced names first, then the least recently used, and the copies no peer holds last', () => {
    const plan = planEviction(files, 0)
    expect(plan.chosen.map((c) => [c.name, c.reason])).toEqual([
      ['new-unref', 'unreferenced'],
      ['old-ref', 'least-recently-used'],
      ['mid-ref', 'least-recently-used'],
      ['newest-ref', 'least-recently-used'],
      ['solo-unref', 'unreferenced'],
      ['solo-ref', 'least-recently-used']
    ])
    expect(plan).toMatchObject({ maxBytes: 0, bytesBefore: 600 * KiB, bytesAfter: 0, overBy: 600 * KiB })
  })

  it('stops as soon as the rest fits, and chooses nothing within the quota or without one', () => {
    const plan = planEviction(files, 450 * KiB)
    expect(plan.chosen.map((c) => c.name)).toEqual(['new-unref', 'old-ref'])
    expect(plan).toMatchObject({ bytesBefore: 600 * KiB, bytesAfter: 400 * KiB, overBy: 150 * KiB })
    expect(planEviction(files, 600 * KiB)).toMatchObject({ chosen: [], overBy: 0, bytesAfter: 600 * KiB })
    expect(planEviction(files, null)).toMatchObject({ maxBytes: null, chosen: [], overBy: 0 })
  })

  it('counts a pinned file (a fetch placing or returning it) but never chooses it', () => {
    const pinned = files.map((f) => f.name === 'new-unref' ? { ...f, pinned: true } : f)
    const plan = planEviction(pinned, 450 * KiB)
    expect(plan.chosen.map((c) => c.name)).toEqual(['old-ref', 'mid-ref'])
    // Even when nothing else is left, it stays: over the quota until its fetch has returned.
    const alone = planEviction([file('big', 0, { size: 500 * KiB, pinned: true })], 100 * KiB)
    expect(alone).toMatchObject({ chosen: [], bytesAfter: 500 * KiB, overBy: 400 * KiB })
  })

  it('breaks ties by name, whatever the input order', () => {
    const tied = [file('b', 1), file('c', 1), file('a', 1)]
    expect(planEviction(tied, 0).chosen.map((c) => c.name)).toEqual(['a', 'b', 'c'])
    expect(planEviction(tied.reverse(), 0).chosen.map((c) => c.name)).toEqual(['a', 'b', 'c'])
  })
})

describe('Store quota support', () => {
  const t = useTempRoot()

  async function setup (): Promise<{ cache: string, dist: string, state: string }> {
    const cache = join(t.root, 'cache')
    const dist = join(t.root, 'dist')
    await mkdir(cache, { recursive: true })
    await mkdir(dist, { recursive: true })
    return { cache, dist, state: join(t.root, 'state') }
  }

  it('counts only the cache dir, takes the later of a use and the mtime, and keeps uses across a restart', async () => {
    const { cache, dist, state } = await setup()
    await writeFile(join(cache, 'a-1.tar.gz'), 'aaaa')
    await writeFile(join(cache, 'b-1.tar.gz'), 'bbbbbb')
    await writeFile(join(dist, 'portage-1.tar.gz'), 'p'.repeat(1000))
    // mtimes in 2001 and 2002: far older than any use below
    await utimes(join(cache, 'a-1.tar.gz'), 1_000_000_000, 1_000_000_000)
    await utimes(join(cache, 'b-1.tar.gz'), 1_020_000_000, 1_020_000_000)
    const init = { cacheDir: cache, distdirs: [dist], stateDir: state, watch: false, rescanIntervalMs: 3_600_000 }
    const store = t.makeStore(init)
    await store.start()
    expect(store.cacheBytes).toBe(10)
    const usedAt = (): Record<string, number> => Object.fromEntries(store.cacheFiles().map((f) => [f.name, f.usedAt]))
    expect(usedAt()).toEqual({ 'a-1.tar.gz': 1_000_000_000_000, 'b-1.tar.gz': 1_020_000_000_000 })

    const before = Date.now()
    store.touch(b2('aaaa'))
    store.touch(b2('p'.repeat(1000))) // a distdir file: not the quota's business, not saved
    expect(usedAt()['a-1.tar.gz']).toBeGreaterThanOrEqual(before)
    const touched = usedAt()['a-1.tar.gz']
    await store.stop()
    const saved = JSON.parse(await readFile(join(state, USES_FILE), 'utf8')) as { uses: Record<string, number> }
    expect(Object.keys(saved.uses)).toEqual([b2('aaaa').toString('hex')])

    const again = t.makeStore(init)
    await again.start()
    expect(Object.fromEntries(again.cacheFiles().map((f) => [f.name, f.usedAt]))).toEqual({ 'a-1.tar.gz': touched, 'b-1.tar.gz': 1_020_000_000_000 })
  })

  it('evicts cache files only: withdraws a content that leaves the box, keeps one that portage-fetch linked into a distdir, never deletes a distdir file', async () => {
    const { cache, dist } = await setup()
    await writeFile(join(cache, 'a-1.tar.gz'), 'aaaa')
    await writeFile(join(cache, 'b-1.tar.gz'), 'bbbbbb')
    await link(join(cache, 'b-1.tar.gz'), join(dist, 'b-1.tar.gz'))
    await writeFile(join(dist, 'portage-1.tar.gz'), 'pppp')
    const store = t.makeStore({ cacheDir: cache, distdirs: [dist], watch: false, rescanIntervalMs: 3_600_000 })
    await store.start()
    const removed: LocalFile[] = []
    store.on('removed', (f) => removed.push(f))

    const deleted = await store.evict([join(cache, 'a-1.tar.gz'), join(cache, 'b-1.tar.gz'), join(dist, 'portage-1.tar.gz'), join(cache, 'nothing.tar.gz')])
    expect(deleted).toEqual([join(cache, 'a-1.tar.gz'), join(cache, 'b-1.tar.gz')])
    expect(await readdir(cache)).toEqual(['.partial'])
    expect((await readdir(dist)).sort()).toEqual(['b-1.tar.gz', 'portage-1.tar.gz'])
    expect(removed.map((f) => f.name)).toEqual(['a-1.tar.gz'])
    // b's bytes live on under DISTDIR's name: still held, now from there.
    expect(store.get(b2('bbbbbb'))?.path).toBe(join(dist, 'b-1.tar.gz'))
    expect(store.cacheBytes).toBe(0)
  })

  it('leaves a file that another took the name of since it was indexed', async () => {
    const { cache } = await setup()
    await writeFile(join(cache, 'a-1.tar.gz'), 'aaaa')
    const store = t.makeStore({ cacheDir: cache, watch: false, rescanIntervalMs: 3_600_000 })
    await store.start()
    // A new inode under the same name, behind the store's back.
    await writeFile(join(cache, 'new.tmp'), 'aaaa')
    await rename(join(cache, 'new.tmp'), join(cache, 'a-1.tar.gz'))
    expect(await store.evict([join(cache, 'a-1.tar.gz')])).toEqual([])
    expect(await readdir(cache)).toContain('a-1.tar.gz')
  })
})
