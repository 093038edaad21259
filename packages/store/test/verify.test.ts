import { describe, expect, it } from 'vitest'
import { link, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { toHex } from '@distswarm/protocol'
import type { LocalFile } from '../src/index.js'
import { b2, useTempRoot } from './util.js'

describe('Store.verify', () => {
  const t = useTempRoot()

  /** A store over one distdir and the cache dir, not watching: changes made behind its back stay unnoticed until verify. */
  async function setup (files: Record<string, string>, distFiles: Record<string, string> = {}, linked: string[] = []): Promise<{ cache: string, dist: string, store: ReturnType<typeof t.makeStore> }> {
    const cache = join(t.root, 'cache')
    const dist = join(t.root, 'dist')
    await mkdir(cache, { recursive: true })
    await mkdir(dist, { recursive: true })
    for (const [name, data] of Object.entries(files)) await writeFile(join(cache, name), data)
    for (const [name, data] of Object.entries(distFiles)) await writeFile(join(dist, name), data)
    // portage-fetch hard-links cache files into DISTDIR: such a copy shares the cache file's bytes.
    for (const name of linked) await link(join(cache, name), join(dist, name))
    const store = t.makeStore({ cacheDir: cache, distdirs: [dist], watch: false, rescanIntervalMs: 3_600_000 })
    await store.start()
    return { cache, dist, store }
  }

  it('passes a cache whose files hold what the index recorded', async () => {
    const { store } = await setup({ 'a-1.tar.gz': 'aaaa', 'b-2.tar.gz': 'bbbbbb' })
    expect(await store.verify()).toMatchObject({ checked: 2, bytes: 10, bad: [] })
  })

  it('reports a changed file and, told to, deletes it, withdraws its digest and re-hashes its other copies; distdirs are left alone', async () => {
    const { cache, dist, store } = await setup({ 'a-1.tar.gz': 'aaaa', 'b-2.tar.gz': 'bbbbbb' }, { 'portage-3.tar.gz': 'pppp' }, ['a-1.tar.gz'])
    await writeFile(join(cache, 'a-1.tar.gz'), 'AAAA')
    await writeFile(join(dist, 'portage-3.tar.gz'), 'PPPP')

    const report = await store.verify()
    expect(report.bad).toEqual([{
      path: join(cache, 'a-1.tar.gz'), name: 'a-1.tar.gz', expected: toHex(b2('aaaa')), actual: toHex(b2('AAAA')),
      reason: 'changed', detail: expect.any(String), removed: false
    }])
    // Report only: the file and the index are as they were.
    expect((await store.verify()).bad).toHaveLength(1)
    expect(store.get(b2('aaaa'))).toBeDefined()

    const removed: LocalFile[] = []
    store.on('removed', (f) => removed.push(f))
    const fixed = await store.verify({ remove: true })
    expect(fixed.bad.map((b) => [b.name, b.removed])).toEqual([['a-1.tar.gz', true]])
    expect(await readdir(cache)).toEqual(['.partial', 'b-2.tar.gz'])
    // The distdir's link is not deleted, but re-hashed: it holds the new bytes, so nobody holds the old digest.
    expect(removed.map((f) => f.name)).toEqual(['a-1.tar.gz'])
    expect(store.get(b2('aaaa'))).toBeUndefined()
    expect(store.get(b2('AAAA'))?.path).toBe(join(dist, 'a-1.tar.gz'))
    expect((await readdir(dist)).sort()).toEqual(['a-1.tar.gz', 'portage-3.tar.gz'])
    expect(await store.verify()).toMatchObject({ checked: 1, bad: [] })
  })

  it('reports what the judge refuses, with the digest it expected', async () => {
    const { cache, store } = await setup({ 'a-1.tar.gz': 'aaaa', 'b-2.tar.gz': 'bbbbbb' })
    const want = toHex(b2('the real a'))
    const report = await store.verify({
      judge: (f) => f.name === 'a-1.tar.gz' && toHex(f.blake2b) !== want ? { expected: want, detail: 'not the Manifest file' } : null
    })
    expect(report.bad).toEqual([{
      path: join(cache, 'a-1.tar.gz'), name: 'a-1.tar.gz', expected: want, actual: toHex(b2('aaaa')), reason: 'manifest', detail: 'not the Manifest file', removed: false
    }])
  })
})
