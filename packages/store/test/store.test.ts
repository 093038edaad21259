import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, mkdir, open, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store, hashFile, isDistfileName, type StoreError } from '../src/index.js'

let root: string
const stores: Store[] = []
const track = (store: Store): Store => { stores.push(store); return store }
beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'distswarm-store-')) })
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.stop()))
  await rm(root, { recursive: true, force: true })
})

const b2 = (b: Buffer) => createHash('blake2b512').update(b).digest()
const s512 = (b: Buffer) => createHash('sha512').update(b).digest()

async function codeOf (p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, (err: StoreError) => err.code)
}

describe('hashFile', () => {
  it('computes BLAKE2B-512 and SHA512 in one pass, across read chunks', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    await writeFile(join(root, 'f'), data)
    const d = await hashFile(join(root, 'f'))
    expect(d.size).toBe(data.length)
    expect(d.blake2b.equals(b2(data))).toBe(true)
    expect(d.sha512.equals(s512(data))).toBe(true)
  })
})

describe('scanning', () => {
  it('skips Portage temporaries, checksum failures, dot-files, dirs and symlinks', async () => {
    const dist = join(root, 'distfiles')
    await mkdir(join(dist, 'sub'), { recursive: true })
    for (const n of ['good-1.tar.gz', 'x.tar.gz.__download__', 'y.tar.gz._checksum_failure_.abc123', '.hidden', '.locks']) {
      await writeFile(join(dist, n), n)
    }
    await writeFile(join(root, 'secret'), 'not a distfile')
    await symlink(join(root, 'secret'), join(dist, 'link.tar.gz'))
    const store = track(new Store({ distdirs: [dist, join(root, 'missing')], cacheDir: join(root, 'cache') }))
    await store.start()
    expect([...store.entries()].map((e) => e.name)).toEqual(['good-1.tar.gz'])
    expect(isDistfileName('a.tar.gz.__download__')).toBe(false)
  })

  it('keys entries by digest: one entry per content, several per name', async () => {
    const a = join(root, 'a'); const b = join(root, 'b')
    await mkdir(a); await mkdir(b)
    await writeFile(join(a, 'same.tar'), 'one'); await writeFile(join(b, 'same.tar'), 'two')
    await writeFile(join(a, 'dup.tar'), 'x'); await writeFile(join(b, 'dup-copy.tar'), 'x')
    const store = track(new Store({ distdirs: [a, b], cacheDir: join(root, 'cache') }))
    await store.start()
    expect(store.size).toBe(3)
    expect(store.findByName('same.tar')).toHaveLength(2)
    expect(store.get(b2(Buffer.from('x')))?.name).toBe('dup.tar')
  })
})

describe('cache dir', () => {
  async function setup () {
    const store = track(new Store({ cacheDir: join(root, 'cache') }))
    await store.start()
    const data = randomBytes(200_000)
    return { store, data, expected: { name: 'pkg-1.0.tar.xz', size: data.length, blake2b: b2(data), sha512: s512(data) } }
  }

  it('publishes a verified download by atomic link, mode 0644, and indexes it', async () => {
    const { store, data, expected } = await setup()
    const dl = await store.begin(expected)
    await dl.write(data.subarray(0, 1000))
    expect(await readdir(store.cache.dir)).toEqual(['.partial'])
    await dl.write(data.subarray(1000))
    const file = await store.commit(dl)
    expect(file.path).toBe(join(store.cache.dir, expected.name))
    expect((await readFile(file.path)).equals(data)).toBe(true)
    expect((await stat(file.path)).mode & 0o777).toBe(0o644)
    expect(await readdir(store.cache.partialDir)).toEqual([])
    expect(store.get(expected.blake2b)?.path).toBe(file.path)
  })

  it.each([
    ['wrong bytes', (d: Buffer) => { const x = Buffer.from(d); x[5]! ^= 1; return x }, {}],
    ['too short', (d: Buffer) => d.subarray(1), {}],
    ['wrong SHA512', (d: Buffer) => d, { sha512: randomBytes(64) }]
  ])('refuses %s: ERR_VERIFY_FAILED, nothing published, partial removed', async (_, mangle, override) => {
    const { store, data, expected } = await setup()
    const dl = await store.begin({ ...expected, ...override })
    await dl.write(mangle(data))
    expect(await codeOf(store.commit(dl))).toBe('ERR_VERIFY_FAILED')
    expect((await readdir(store.cache.dir)).filter((n) => n !== '.partial')).toEqual([])
    expect(await readdir(store.cache.partialDir)).toEqual([])
    expect(store.size).toBe(0)
  })

  it('computes the SHA512 only when it is to be checked; a wrong one with the right BLAKE2B is told apart (mismatch "sha512")', async () => {
    const { store, data, expected } = await setup()
    const wrong = await store.begin({ ...expected, sha512: randomBytes(64) })
    await wrong.write(data)
    expect(await wrong.verify()).toBe('SHA512 digest does not match')
    expect(wrong.mismatch).toBe('sha512')
    await wrong.abort()

    const bad = await store.begin({ ...expected, sha512: undefined })
    await bad.write(Buffer.alloc(data.length))
    expect(await bad.verify()).toBe('BLAKE2B digest does not match')
    expect(bad.mismatch).toBe('blake2b')
    await bad.truncate(0)
    await bad.write(data)
    expect(await bad.verify()).toBeNull()
    expect(bad.mismatch).toBeNull()
    expect(bad.digests?.sha512.byteLength).toBe(0)
    expect((await store.commit(bad)).sha512.byteLength).toBe(0)

    const checked = await store.begin({ ...expected, name: 'other-1.0.tar.xz' })
    await checked.write(data)
    expect(await checked.verify()).toBeNull()
    expect(checked.digests?.sha512.equals(expected.sha512)).toBe(true)
    await checked.abort()
  })

  it('repairs wrong bytes in place: verify() says what is wrong, a rewrite of that range fixes it, the hashes start over', async () => {
    const { store, data, expected } = await setup()
    const dl = await store.begin(expected)
    const bad = Buffer.from(data)
    bad[150_000]! ^= 1
    await dl.write(bad.subarray(0, 100_000))
    expect(await codeOf(dl.write(bad.subarray(120_000), 120_000))).toBe('ERR_DOWNLOAD_GAP')
    await dl.write(bad.subarray(100_000))
    expect(await dl.verify()).toBe('BLAKE2B digest does not match')
    await dl.write([data.subarray(140_000, 150_000), data.subarray(150_000, 160_000)], 140_000)
    expect(dl.written).toBe(data.length)
    expect(await dl.verify()).toBeNull()
    const file = await store.commit(dl)
    expect((await readFile(file.path)).equals(data)).toBe(true)
  })

  it('a rewrite of bytes the hash workers already read makes them hash the file again', async () => {
    const { store, data, expected } = await setup()
    const dl = await store.begin(expected)
    const bad = Buffer.from(data)
    bad[10]! ^= 1
    await dl.write(bad)
    // Give the workers time to read the bad bytes (the test passes either way; without the restart it fails only if they did).
    await new Promise((resolve) => setTimeout(resolve, 300))
    await dl.write(data.subarray(0, 1000), 0)
    expect(await dl.verify()).toBeNull()
    await dl.abort()
  })

  it('with gaps allowed, pieces landing in any order verify (hashed up to the first gap as they land); distrust() makes verify read the disk again', async () => {
    const { store, data, expected } = await setup()
    const dl = await store.begin(expected)
    dl.allowGaps = true
    const piece = (i: number): [Buffer, number] => [data.subarray(i * 50_000, (i + 1) * 50_000), i * 50_000]
    for (const i of [2, 0, 3, 1]) await dl.write(...piece(i))
    expect(dl.written).toBe(data.length)
    expect(await dl.verify()).toBeNull()
    await dl.abort()

    // Bytes changed on disk after they landed: a distrusted download reads them back and says so.
    const again = await store.begin(expected)
    again.allowGaps = true
    for (const i of [1, 0, 2, 3]) await again.write(...piece(i))
    // Give the workers time to hash what landed (without distrust() the test then fails: their digest is of the bytes before the change).
    await new Promise((resolve) => setTimeout(resolve, 300))
    const fh = await open(again.tempPath, 'r+')
    await fh.write(Buffer.from([data[7]! ^ 1]), 0, 1, 7)
    await fh.close()
    again.distrust()
    expect(await again.verify()).toBe('BLAKE2B digest does not match')
    await again.write(...piece(0))
    expect(await again.verify()).toBeNull()
    expect((await readFile((await store.commit(again)).path)).equals(data)).toBe(true)
  })

  it('leaves no file open in the hash workers once downloads are committed', async () => {
    const { store } = await setup()
    const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length
    const commitOne = async (i: number): Promise<void> => {
      const data = randomBytes(10_000 + i)
      const dl = await store.begin({ name: `n-${i}.tar.gz`, size: data.length, blake2b: b2(data), sha512: s512(data) })
      await dl.write(data)
      await store.commit(dl)
    }
    await commitOne(0) // the workers' own descriptors exist from here on
    const before = await openFds()
    for (let i = 1; i <= 20; i++) await commitOne(i)
    // A worker opens a download's file when told to; give it time to have acted on every message.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await openFds()).toBeLessThan(before + 5)
  })

  it('refuses bytes past the expected size as they arrive', async () => {
    const { store, data, expected } = await setup()
    const dl = await store.begin(expected)
    expect(await codeOf(dl.write(Buffer.concat([data, Buffer.alloc(1)])))).toBe('ERR_VERIFY_FAILED')
    expect(await readdir(store.cache.partialDir)).toEqual([])
  })

  it('never overwrites an existing file of the same name', async () => {
    const { store, data, expected } = await setup()
    await writeFile(join(store.cache.dir, expected.name), 'someone else')
    const dl = await store.begin(expected)
    await dl.write(data)
    expect(await codeOf(store.commit(dl))).toBe('ERR_NAME_TAKEN')
    expect(await readFile(join(store.cache.dir, expected.name), 'utf8')).toBe('someone else')
  })

  it('a same-name file of another size is refused unread; one of the same size is hashed (BLAKE2B only) in the worker pool', async () => {
    const store = track(new Store({ cacheDir: join(root, 'cache'), watch: false }))
    await store.start()
    const data = randomBytes(300_000)
    const expected = { name: 'same-1.tar.gz', size: data.length, blake2b: b2(data), sha512: s512(data) }
    const commitWith = async (existing: Buffer): Promise<string | undefined> => {
      await writeFile(join(store.cache.dir, expected.name), existing)
      const dl = await store.begin(expected)
      await dl.write(data)
      return await codeOf(store.commit(dl))
    }
    expect(await commitWith(data.subarray(1))).toBe('ERR_NAME_TAKEN')
    expect(store.stats.bytesHashed).toBe(0)
    const other = Buffer.from(data)
    other[7]! ^= 1
    expect(await commitWith(other)).toBe('ERR_NAME_TAKEN')
    expect(store.stats.bytesHashed).toBe(data.length)
    expect(await commitWith(data)).toBeUndefined()
    expect(store.stats.bytesHashed).toBe(2 * data.length)
    expect(store.get(expected.blake2b)?.path).toBe(join(store.cache.dir, expected.name))
  })

  it('allows one download per digest at a time', async () => {
    const { store, expected } = await setup()
    const dl = await store.begin(expected)
    expect(await codeOf(store.begin(expected))).toBe('ERR_DOWNLOAD_BUSY')
    await dl.abort()
    await (await store.begin(expected)).abort()
  })

  it('keeps a crashed run\'s partial download for resuming; removes foreign and week-old ones', async () => {
    const cache = join(root, 'cache')
    const partial = join(cache, '.partial')
    await mkdir(partial, { recursive: true })
    const fresh = 'ab'.repeat(64)
    const old = 'cd'.repeat(64)
    await writeFile(join(partial, fresh), 'half a file')
    await writeFile(join(partial, old), 'half a file, long ago')
    await utimes(join(partial, old), new Date(2020, 0, 1), new Date(2020, 0, 1))
    await writeFile(join(partial, 'junk.tmp'), 'not ours')
    const store = new Store({ cacheDir: cache })
    onTestFinished(() => store.stop())
    await store.start()
    expect(await readdir(partial)).toEqual([fresh])
    expect(store.size).toBe(0)
  })

  it('resumes a suspended download after a restart, from the bytes already on disk', async () => {
    const { store, data, expected } = await setup()
    const first = await store.begin(expected)
    await first.write(data.subarray(0, 123_456))
    await first.suspend()
    await store.stop()
    const again = new Store({ cacheDir: store.cache.dir })
    onTestFinished(() => again.stop())
    await again.start()
    const dl = await again.begin(expected)
    expect(dl.resumedFrom).toBe(123_456)
    expect(dl.written).toBe(123_456)
    await dl.write(data.subarray(123_456))
    const file = await again.commit(dl)
    expect((await readFile(file.path)).equals(data)).toBe(true)
  })

  it('discards a resumed partial whose bytes turn out wrong', async () => {
    const { store, data, expected } = await setup()
    const bad = Buffer.from(data.subarray(0, 1000))
    bad[10]! ^= 1
    await writeFile(join(store.cache.partialDir, expected.blake2b.toString('hex')), bad)
    const dl = await store.begin(expected)
    expect(dl.resumedFrom).toBe(1000)
    await dl.write(data.subarray(1000))
    expect(await codeOf(store.commit(dl))).toBe('ERR_VERIFY_FAILED')
    expect(await readdir(store.cache.partialDir)).toEqual([])
  })

  it('refuses a path-like name before touching the disk', async () => {
    const { store, expected } = await setup()
    expect(await codeOf(store.begin({ ...expected, name: '../../etc/passwd' }))).toBe('ERR_INVALID_NAME')
  })
})
