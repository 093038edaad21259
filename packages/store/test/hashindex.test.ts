import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { INDEX_FILE } from '../src/hashindex.js'
import { forEachBounded } from '@distswarm/protocol'
import { b2, captureLog, s512, useTempRoot } from './util.js'

const t = useTempRoot()

describe('persistent hash index', () => {
  it('restart over 5 000 indexed files reads no content; only a changed file is hashed again, a deleted one pruned', async () => {
    const dist = join(t.root, 'distfiles')
    const state = join(t.root, 'state')
    await mkdir(dist)
    const names = Array.from({ length: 5000 }, (_, i) => `pkg-${i}.tar.gz`)
    const content = (name: string, i: number): string => `${name}\n`.repeat(1 + (i % 7))
    await forEachBounded(names.keys(), 64, (i) => writeFile(join(dist, names[i]!), content(names[i]!, i)))
    const totalBytes = names.reduce((n, name, i) => n + Buffer.byteLength(content(name, i)), 0)
    const init = { distdirs: [dist], cacheDir: join(t.root, 'cache'), stateDir: state }

    const first = t.makeStore(init)
    await first.start()
    expect(first.size).toBe(5000)
    expect(first.stats).toMatchObject({ index: 'missing', filesHashed: 5000, bytesHashed: totalBytes })
    await first.stop()
    await first.stop()

    const second = t.makeStore(init)
    const started = Date.now()
    await second.start()
    const restartMs = Date.now() - started
    expect(second.stats).toMatchObject({ index: 'loaded', indexEntries: 5000, filesHashed: 0, bytesHashed: 0 })
    expect(second.size).toBe(5000)
    expect(second.get(b2(content(names[42]!, 42)))?.path).toBe(join(dist, names[42]!))
    expect(restartMs).toBeLessThan(10_000) // generous: the point is zero bytes read, timing is in the report
    await second.stop()

    // While no store runs: pkg-0 gets new content of the same size; its mtime
    // is left to the kernel (now, well after it was indexed) rather than
    // restored, since a rewrite that restores size and mtime is by design not
    // noticed (see StatKey). pkg-1 is deleted.
    const changed = join(dist, names[0]!)
    const oldContent = await readFile(changed, 'utf8')
    const newContent = oldContent.toUpperCase()
    const before = await stat(changed, { bigint: true })
    await writeFile(changed, newContent)
    const after = await stat(changed, { bigint: true })
    expect(after.ino).toBe(before.ino)
    expect(after.size).toBe(before.size)
    expect(after.mtimeNs).not.toBe(before.mtimeNs)
    await rm(join(dist, names[1]!))

    const third = t.makeStore(init)
    await third.start()
    expect(third.stats).toMatchObject({ index: 'loaded', indexEntries: 5000, filesHashed: 1, bytesHashed: Buffer.byteLength(newContent) })
    expect(third.size).toBe(4999)
    expect(third.get(b2(newContent))?.path).toBe(changed)
    expect(third.get(b2(oldContent))).toBeUndefined()
    await third.stop()

    const fourth = t.makeStore(init)
    await fourth.start()
    expect(fourth.stats).toMatchObject({ index: 'loaded', indexEntries: 4999, filesHashed: 0 })
  }, 120_000)

  it('re-hashes a file whose mtime moved by 10 microseconds, size and inode unchanged (mtime in nanoseconds)', async () => {
    const dist = join(t.root, 'd')
    const file = join(dist, 'a.tar')
    await mkdir(dist)
    await writeFile(file, 'aaaa')
    const whole = 1_700_000_000
    await utimes(file, whole, whole)
    const init = { distdirs: [dist], cacheDir: join(t.root, 'cache'), stateDir: join(t.root, 'state'), watch: false }
    const first = t.makeStore(init)
    await first.start()
    await first.stop()
    await writeFile(file, 'bbbb')
    // libuv sets times to the microsecond; 10 µs is well inside one millisecond.
    await utimes(file, whole, whole + 0.000_01)
    const step = (await stat(file, { bigint: true })).mtimeNs - BigInt(whole) * 1_000_000_000n
    expect(step > 0n && step < 1_000_000n).toBe(true)
    const second = t.makeStore(init)
    await second.start()
    expect(second.stats.filesHashed).toBe(1)
    expect(second.get(b2('bbbb'))?.path).toBe(file)
  })

  it.each([
    ['garbage', async (p: string) => writeFile(p, 'this is not an index at all, only some text that is long enough to have a checksum'), /not a distswarm hash index/],
    ['truncated', async (p: string) => truncate(p, (await stat(p)).size - 100), /checksum mismatch/],
    ['bit-flipped', async (p: string) => {
      const buf = await readFile(p)
      buf[buf.length >> 1]! ^= 0x40
      await writeFile(p, buf)
    }, /checksum mismatch/],
    ['empty', async (p: string) => writeFile(p, ''), /only 0 bytes/],
    ['from a newer version', async (p: string) => {
      const buf = await readFile(p)
      buf.writeUInt32LE(99, 8)
      await writeFile(p, buf)
    }, /unsupported version 99/]
  ])('survives an index file that is %s: logs why, hashes afresh, writes a good one', async (_, damage, reason) => {
    const dist = join(t.root, 'd')
    const state = join(t.root, 'state')
    await mkdir(dist)
    for (const n of ['a.tar', 'b.tar', 'c.tar']) await writeFile(join(dist, n), n.repeat(1000))
    const init = { distdirs: [dist], cacheDir: join(t.root, 'cache'), stateDir: state, watch: false }
    const first = t.makeStore(init)
    await first.start()
    await first.stop()
    await damage(join(state, INDEX_FILE))

    const second = t.makeStore(init)
    const lines = await captureLog(() => second.start())
    expect(lines.some((l) => l.includes('unusable') && reason.test(l))).toBe(true)
    expect(second.stats).toMatchObject({ index: 'rebuilt', filesHashed: 3 })
    expect(second.stats.indexProblem).toMatch(reason)
    expect(second.size).toBe(3)
    await second.stop()

    const third = t.makeStore(init)
    await third.start()
    expect(third.stats).toMatchObject({ index: 'loaded', indexEntries: 3, filesHashed: 0 })
  })

  it('keeps a download whose SHA512 was not computed over a restart, reading none of it, and still reads a version 1 index', async () => {
    const dist = join(t.root, 'd')
    const state = join(t.root, 'state')
    await mkdir(dist)
    await writeFile(join(dist, 'a.tar'), 'a'.repeat(1000))
    const init = { distdirs: [dist], cacheDir: join(t.root, 'cache'), stateDir: state, watch: false }
    const first = t.makeStore(init)
    await first.start()
    const data = randomBytes(100_000)
    const dl = await first.begin({ name: 'fetched-1.tar.xz', size: data.length, blake2b: b2(data) })
    await dl.write(data)
    expect((await first.commit(dl)).sha512.byteLength).toBe(0)
    await first.stop()

    const second = t.makeStore(init)
    await second.start()
    expect(second.stats).toMatchObject({ index: 'loaded', indexEntries: 2, filesHashed: 0, bytesHashed: 0 })
    expect(second.get(b2(data))?.sha512.byteLength).toBe(0)
    expect(second.get(b2('a'.repeat(1000)))?.sha512.equals(s512('a'.repeat(1000)))).toBe(true)
    await second.stop()

    // What an agent before version 2 wrote: every SHA512 computed.
    await rm(join(t.root, 'cache', 'fetched-1.tar.xz'))
    const buf = await readFile(join(state, INDEX_FILE))
    buf.writeUInt32LE(1, 8)
    createHash('sha256').update(buf.subarray(0, buf.length - 32)).digest().copy(buf, buf.length - 32)
    await writeFile(join(state, INDEX_FILE), buf)
    const third = t.makeStore(init)
    await third.start()
    expect(third.stats).toMatchObject({ index: 'loaded', filesHashed: 0 })
    expect(third.get(b2('a'.repeat(1000)))?.sha512.equals(s512('a'.repeat(1000)))).toBe(true)
  })

  it('keeps no index without a stateDir', async () => {
    const dist = join(t.root, 'd')
    await mkdir(dist)
    await writeFile(join(dist, 'a.tar'), 'a')
    const init = { distdirs: [dist], cacheDir: join(t.root, 'cache'), watch: false }
    for (let i = 0; i < 2; i++) {
      const store = t.makeStore(init)
      await store.start()
      expect(store.stats).toMatchObject({ index: 'off', filesHashed: 1 })
      await store.stop()
    }
  })
})
