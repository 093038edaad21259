import { describe, expect, it, onTestFinished } from 'vitest'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { access, mkdir, readdir, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LogFields, Logger } from '@distswarm/protocol'
import { ManifestIndex, ManifestWatcher, Store, type StoreError, type StoreInit } from '../src/index.js'
import { b2, s512, sleep, useTempRoot, waitFor } from './util.js'

const t = useTempRoot()

interface Seen { level: string, event: string, fields: LogFields }

/** A Logger that keeps what it is given, children included. */
function recordingLogger (seen: Seen[] = [], name = 'store'): Logger & { seen: Seen[] } {
  const at = (level: string) => (event: string, fields: LogFields = {}): void => { seen.push({ level, event, fields: { logger: name, ...fields } }) }
  return { seen, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (n) => recordingLogger(seen, `${name}:${n}`) }
}

async function codeOf (p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p)
    return undefined
  } catch (err) {
    return (err as StoreError).code
  }
}

describe('Store options', () => {
  it.each<[keyof StoreInit, unknown]>([
    ['cacheDir', ''],
    ['distdirs', 'not-an-array'],
    ['stateDir', 42],
    ['hashWorkers', 1],
    ['hashWorkers', 2.5],
    ['settleMs', -1],
    ['rescanIntervalMs', 0],
    ['maxPending', 0],
    ['watch', 'yes']
  ])('refuses %s = %j in the constructor with ERR_INVALID_OPTION naming it', async (option, value) => {
    const init = { cacheDir: join(t.root, 'cache'), [option]: value } as StoreInit
    let err: StoreError | undefined
    try {
      t.makeStore(init)
    } catch (e) {
      err = e as StoreError
    }
    expect(err?.code).toBe('ERR_INVALID_OPTION')
    expect(err?.message).toContain(option)
  })

  it('makes nothing on disk until start()', async () => {
    const cache = join(t.root, 'cache')
    const store = t.makeStore({ cacheDir: cache, stateDir: join(t.root, 'state') })
    expect(await codeOf(access(cache))).toBe('ENOENT')
    await store.start()
    await access(join(cache, '.partial'))
  })

  it.each([[2, 1, 1], [3, 2, 1], [4, 2, 2], [6, 4, 2]])('hashWorkers %i is the total: %i for files, %i for downloads', async (total, files, streams) => {
    const store = t.makeStore({ cacheDir: join(t.root, 'cache'), hashWorkers: total })
    expect(store.stats.hashThreads).toEqual({ files, streams })
    expect(files + streams).toBe(total)
  })
})

describe('Store lifecycle', () => {
  it('starts no hash thread over dirs with nothing to index, and still indexes a file that comes later', async () => {
    const distdir = join(t.root, 'distfiles')
    await mkdir(join(distdir, 'subdir'), { recursive: true })
    const store = t.makeStore({ distdirs: [distdir], cacheDir: join(t.root, 'cache'), stateDir: join(t.root, 'state'), settleMs: 0 })
    const threads = (): number => (store as unknown as { pool: { slots: Set<unknown> } }).pool.slots.size
    await store.start()
    expect(threads()).toBe(0)
    await writeFile(join(distdir, 'late-1.0.tar.gz'), 'late')
    await waitFor('the late file indexed', () => store.size === 1)
    expect(store.findByName('late-1.0.tar.gz')[0]?.blake2b.equals(b2('late'))).toBe(true)
  })

  it('starts its hash threads at once when a dir holds a file', async () => {
    const distdir = join(t.root, 'distfiles')
    await mkdir(distdir, { recursive: true })
    await writeFile(join(distdir, 'a-1.0.tar.gz'), 'a')
    const store = t.makeStore({ distdirs: [distdir], cacheDir: join(t.root, 'cache') })
    const threads = (): number => (store as unknown as { pool: { slots: Set<unknown> } }).pool.slots.size
    await store.start()
    expect(threads()).toBeGreaterThan(0)
    expect(store.size).toBe(1)
  })

  it('over a saved index that vouches for every file, starts only the thread that lists the dir', async () => {
    const distdir = join(t.root, 'distfiles')
    await mkdir(distdir, { recursive: true })
    await Promise.all(['a', 'b', 'c', 'd'].map((x) => writeFile(join(distdir, `${x}-1.0.tar.gz`), x)))
    const init = { distdirs: [distdir], cacheDir: join(t.root, 'cache'), stateDir: join(t.root, 'state') }
    const first = t.makeStore(init)
    await first.start()
    expect(first.stats.filesHashed).toBe(4)
    await first.stop()
    const again = t.makeStore(init)
    await again.start()
    expect(again.stats.index).toBe('loaded')
    expect(again.stats.filesHashed).toBe(0)
    expect((again as unknown as { pool: { slots: Set<unknown> } }).pool.slots.size).toBe(1)
    expect(again.size).toBe(4)
  })

  it('start() and stop() are idempotent; a stopped store does not start again', async () => {
    const store = t.makeStore({ cacheDir: join(t.root, 'cache') })
    await Promise.all([store.start(), store.start()])
    await Promise.all([store.stop(), store.stop()])
    expect(await codeOf(store.start())).toBe('ERR_STORE_CLOSED')
  })

  it('a start that fails stops what it started', async () => {
    // A "distdir" that is a file: the cache dir is watched by then, and listing the file fails.
    await writeFile(join(t.root, 'file'), 'x')
    const store = t.makeStore({ distdirs: [join(t.root, 'file')], cacheDir: join(t.root, 'cache') })
    expect(await codeOf(store.start())).toBe('ENOTDIR')
    await store.stop()
    expect(store.stats.watchedDirs).toBe(0)
    expect(await codeOf(store.start())).toBe('ERR_STORE_CLOSED')
  })

  it('stop() suspends a download in progress: its file is closed, its bytes kept for a resume', async () => {
    const cache = join(t.root, 'cache')
    const store = t.makeStore({ cacheDir: cache })
    await store.start()
    const data = randomBytes(100_000)
    const dl = await store.begin({ name: 'half.tar', size: data.length, blake2b: b2(data), sha512: s512(data) })
    await dl.write(data.subarray(0, 40_000))
    await store.stop()
    const open: string[] = []
    for (const fd of await readdir('/proc/self/fd')) open.push(await readlink(join('/proc/self/fd', fd)).catch(() => ''))
    expect(open).not.toContain(dl.tempPath)
    expect(await codeOf(dl.write(data.subarray(40_000)))).toBe('ERR_DOWNLOAD_CLOSED')

    const again = t.makeStore({ cacheDir: cache })
    await again.start()
    const resumed = await again.begin({ name: 'half.tar', size: data.length, blake2b: b2(data), sha512: s512(data) })
    expect(resumed.resumedFrom).toBe(40_000)
    await resumed.abort()
  })
})

describe('Store logging', () => {
  it('warns through the logger it was given when it cannot save its state, and goes on', async () => {
    await writeFile(join(t.root, 'file'), 'x')
    const logger = recordingLogger()
    const dist = join(t.root, 'dist')
    await mkdir(dist)
    await writeFile(join(dist, 'a.tar'), 'a')
    // A state dir under a regular file: nothing can be written there, even by root.
    const store = t.makeStore({ distdirs: [dist], cacheDir: join(t.root, 'cache'), stateDir: join(t.root, 'file', 'state'), watch: false, logger })
    await store.start()
    expect(store.size).toBe(1)
    store.touch(b2('a'))
    await store.stop()
    const warned = logger.seen.filter((s) => s.level === 'warn' && s.event === 'state.save-failed')
    // Once each: the index at the end of start(), the use times at stop() (the index's second failure is no news).
    expect(warned.map((s) => s.fields.what)).toEqual(['hash index', 'cache use times'])
    expect(warned[0]!.fields.error).toMatch(/ENOTDIR/)
  })
})

describe('ManifestWatcher lifecycle', () => {
  async function makeRepo (): Promise<{ repo: string, index: ManifestIndex }> {
    const repo = join(t.root, 'gentoo')
    await mkdir(join(repo, 'app-misc/a'), { recursive: true })
    await writeFile(join(repo, 'app-misc/a/Manifest'), '')
    return { repo, index: await ManifestIndex.load([repo]) }
  }

  it('checks only once started; start() and stop() are idempotent', async () => {
    const { repo, index } = await makeRepo()
    const watcher = new ManifestWatcher(index, { intervalMs: 10 })
    onTestFinished(() => watcher.stop())
    let reloads = 0
    watcher.on('reload', () => { reloads++ })
    await writeFile(join(repo, 'app-misc/a/Manifest'), `DIST a.tar 1 BLAKE2B ${'ab'.repeat(64)}\n`)
    await sleep(100)
    expect(reloads).toBe(0)
    watcher.start()
    watcher.start()
    await once(watcher, 'reload', { signal: AbortSignal.timeout(10_000) })
    watcher.stop()
    watcher.stop()
    expect(watcher.stopped).toBe(true)
    watcher.start()
    expect(await watcher.check()).toBe(false)
  })

  it('refuses bad options with ERR_INVALID_OPTION naming them', async () => {
    const { index } = await makeRepo()
    expect(await codeOf(() => new ManifestWatcher(index, { intervalMs: 0 }))).toBe('ERR_INVALID_OPTION')
    expect(await codeOf(() => new ManifestWatcher(index, { statsPerCheck: -1 }))).toBe('ERR_INVALID_OPTION')
    expect(await codeOf(ManifestIndex.load([], { concurrency: 0 }))).toBe('ERR_INVALID_OPTION')
  })

})
