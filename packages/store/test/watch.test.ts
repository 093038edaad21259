import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { appendFile, link, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { toHex } from '@distswarm/protocol'
import type { LocalFile, Store, StoreInit } from '../src/index.js'
import { b2, captureLog, s512, sleep, useTempRoot, waitFor } from './util.js'

const t = useTempRoot()

/** Opens a store with short settle times and records its events in order. */
async function watched (init: Partial<StoreInit> = {}) {
  const dist = join(t.root, 'distfiles')
  await mkdir(dist, { recursive: true })
  const store = t.makeStore({ distdirs: [dist], cacheDir: join(t.root, 'cache'), settleMs: 50, ...init })
  const events: Array<{ type: 'added' | 'removed', name: string, hex: string }> = []
  const record = (type: 'added' | 'removed') => (f: LocalFile) => { events.push({ type, name: f.name, hex: toHex(f.blake2b) }) }
  store.on('added', record('added'))
  store.on('removed', record('removed'))
  await store.start()
  events.length = 0 // what open() found is not news
  return { store, dist, events }
}

describe('watching', () => {
  it('adds a file Portage renames from .__download__, and never the .__download__ file itself', async () => {
    const { store, dist, events } = await watched()
    expect(store.stats.watchedDirs).toBe(2)
    const data = randomBytes(300_000)
    const temp = join(dist, 'x.tar.gz.__download__')
    await writeFile(temp, data.subarray(0, 100_000))
    await appendFile(temp, data.subarray(100_000))
    await sleep(200) // four settle times: long enough for the temp file to have been indexed, were it ever
    expect(events).toEqual([])
    await rename(temp, join(dist, 'x.tar.gz'))
    await waitFor('x.tar.gz added', () => events.length > 0)
    expect(events).toEqual([{ type: 'added', name: 'x.tar.gz', hex: toHex(b2(data)) }])
    const file = store.get(b2(data))!
    expect(file.path).toBe(join(dist, 'x.tar.gz'))
    expect(file.sha512.equals(s512(data))).toBe(true)
    expect(store.findByName('x.tar.gz.__download__')).toEqual([])
    expect(store.stats).toMatchObject({ filesHashed: 1, bytesHashed: data.length })
  })

  it('withdraws a deleted file', async () => {
    const dist = join(t.root, 'distfiles')
    await mkdir(dist)
    await writeFile(join(dist, 'gone.tar'), 'soon gone')
    const { store, events } = await watched()
    expect(store.size).toBe(1)
    await rm(join(dist, 'gone.tar'))
    await waitFor('gone.tar removed', () => events.length > 0)
    expect(events).toEqual([{ type: 'removed', name: 'gone.tar', hex: toHex(b2('soon gone')) }])
    expect(store.size).toBe(0)
  })

  it.each([
    ['rewritten in place', async (path: string, data: string) => writeFile(path, data)],
    ['replaced by rename', async (path: string, data: string) => {
      await writeFile(`${path}.__download__`, data)
      await rename(`${path}.__download__`, path)
    }]
  ])('treats a file %s with new content as removed old digest, then added new', async (_, replace) => {
    const dist = join(t.root, 'distfiles')
    await mkdir(dist)
    await writeFile(join(dist, 'f.tar'), 'old content')
    const { store, events } = await watched()
    await replace(join(dist, 'f.tar'), 'new content!')
    await waitFor('f.tar replaced', () => events.length >= 2)
    await sleep(150) // nothing more comes
    expect(events).toEqual([
      { type: 'removed', name: 'f.tar', hex: toHex(b2('old content')) },
      { type: 'added', name: 'f.tar', hex: toHex(b2('new content!')) }
    ])
    expect(store.size).toBe(1)
  })

  it('ignores symlinks, checksum failures and dot-files that appear', async () => {
    const { store, dist, events } = await watched()
    await writeFile(join(t.root, 'secret'), 'not a distfile')
    await symlink(join(t.root, 'secret'), join(dist, 'link.tar.gz'))
    await writeFile(join(dist, 'y.tar.gz._checksum_failure_.abc123'), 'bad')
    await writeFile(join(dist, '.hidden'), 'hidden')
    await writeFile(join(dist, 'real.tar'), 'real')
    await waitFor('real.tar added', () => events.length > 0)
    await sleep(150)
    expect(events.map((e) => e.name)).toEqual(['real.tar'])
    expect(store.stats.filesHashed).toBe(1)
  })

  it('does not index a committed download twice: the commit adds it, the watcher finds it known', async () => {
    const { store, events } = await watched()
    const data = randomBytes(50_000)
    const dl = await store.begin({ name: 'pkg-1.tar.xz', size: data.length, blake2b: b2(data) })
    await dl.write(data)
    const file = await store.commit(dl)
    expect(file.sha512.byteLength).toBe(0) // not asked for: not computed
    await sleep(300)
    expect(events).toEqual([{ type: 'added', name: 'pkg-1.tar.xz', hex: toHex(b2(data)) }])
    expect(store.stats).toMatchObject({ filesHashed: 0, bytesHashed: 0 })
  })

  it('does not read a hard link of a known file again (portage-fetch links cache files into DISTDIR)', async () => {
    const { store, dist, events } = await watched()
    const data = randomBytes(80_000)
    const dl = await store.begin({ name: 'linked-1.tar', size: data.length, blake2b: b2(data) })
    await dl.write(data)
    const file = await store.commit(dl)
    await link(file.path, join(dist, 'linked-1.tar.__download__'))
    await rename(join(dist, 'linked-1.tar.__download__'), join(dist, 'linked-1.tar'))
    await waitFor('the DISTDIR copy advertised', () => store.get(b2(data))?.path === join(dist, 'linked-1.tar'))
    expect(events.map((e) => e.type)).toEqual(['added'])
    expect(store.stats).toMatchObject({ filesHashed: 0, bytesHashed: 0 })
    // The cache copy still backs the content when the DISTDIR link goes.
    await rm(join(dist, 'linked-1.tar'))
    await waitFor('the cache copy advertised again', () => store.get(b2(data))?.path === file.path)
    expect(events.map((e) => e.type)).toEqual(['added'])
  })

  it('keeps content advertised while another copy remains, under the remaining name', async () => {
    const dist = join(t.root, 'distfiles')
    await mkdir(dist)
    await writeFile(join(dist, 'a-1.tar'), 'same bytes')
    await writeFile(join(dist, 'b-1.tar'), 'same bytes')
    const { store, events } = await watched()
    expect(store.get(b2('same bytes'))?.name).toBe('a-1.tar')
    await rm(join(dist, 'a-1.tar'))
    await waitFor('the other copy advertised', () => events.length > 0)
    expect(events).toEqual([{ type: 'added', name: 'b-1.tar', hex: toHex(b2('same bytes')) }])
    expect(store.get(b2('same bytes'))?.name).toBe('b-1.tar')
    await rm(join(dist, 'b-1.tar'))
    await waitFor('the content withdrawn', () => events.length > 1)
    expect(events[1]).toEqual({ type: 'removed', name: 'b-1.tar', hex: toHex(b2('same bytes')) })
  })

  it('caps names pending after a burst of events and catches up with a rescan', async () => {
    const { store, dist, events } = await watched({ maxPending: 5 })
    const lines = await captureLog(async () => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => writeFile(join(dist, `burst-${i}.tar`), `burst ${i}`)))
      await waitFor('all 40 added', () => events.length === 40)
    })
    expect(lines.some((l) => /names pending; rescanning/.test(l))).toBe(true)
    expect(store.size).toBe(40)
    expect(store.stats.filesHashed).toBe(40)
  })
})

describe('without fs.watch', () => {
  it('falls back to a periodic rescan, also of a dir that did not exist at first', async () => {
    const dist = join(t.root, 'later')
    const store: Store = t.makeStore({ distdirs: [dist], cacheDir: join(t.root, 'cache'), watch: false, rescanIntervalMs: 50 })
    const events: string[] = []
    store.on('added', (f) => events.push(`+${f.name}`))
    store.on('removed', (f) => events.push(`-${f.name}`))
    await store.start()
    expect(store.stats.watchedDirs).toBe(0)
    await mkdir(dist)
    await writeFile(join(dist, 'late.tar'), 'late')
    await waitFor('late.tar added by a rescan', () => events.length > 0)
    await rm(join(dist, 'late.tar'))
    await waitFor('late.tar removed by a rescan', () => events.length > 1)
    expect(events).toEqual(['+late.tar', '-late.tar'])
    expect(store.stats.filesHashed).toBe(1)
  })

  it('watches a dir once it exists when watching is on', async () => {
    const dist = join(t.root, 'later')
    const store = t.makeStore({ distdirs: [dist], cacheDir: join(t.root, 'cache'), settleMs: 20, rescanIntervalMs: 50 })
    await store.start()
    expect(store.stats.watchedDirs).toBe(1) // the cache dir
    await mkdir(dist)
    await waitFor('the new dir watched', () => store.stats.watchedDirs === 2)
    await writeFile(join(dist, 'now.tar'), 'now')
    await waitFor('now.tar added', () => store.size === 1)
  })

  it('forgets the files of a watched dir that is removed', async () => {
    const dist = join(t.root, 'distfiles')
    await mkdir(dist)
    await writeFile(join(dist, 'a.tar'), 'a')
    const { store, events } = await watched({ rescanIntervalMs: 100_000 })
    await rm(dist, { recursive: true })
    await waitFor('a.tar removed', () => store.size === 0)
    expect(events).toEqual([{ type: 'removed', name: 'a.tar', hex: toHex(b2('a')) }])
  })
})

describe('close', () => {
  it('is idempotent, stops watching and refuses to open again', async () => {
    const { store, dist, events } = await watched()
    await Promise.all([store.stop(), store.stop()])
    await store.stop()
    expect(store.stats.watchedDirs).toBe(0)
    await writeFile(join(dist, 'after.tar'), 'after')
    await sleep(150)
    expect(events).toEqual([])
    expect(await store.start().then(() => 'opened', (err: { code: string }) => err.code)).toBe('ERR_STORE_CLOSED')
  })
})
