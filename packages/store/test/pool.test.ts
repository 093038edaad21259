import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hashFile, type StoreError } from '../src/index.js'
import { HashPool } from '../src/pool.js'
import { StreamHasher } from '../src/streamhash.js'
import { statFile } from '../src/scan.js'
import { b2, s512, useTempRoot } from './util.js'

const t = useTempRoot()

/** Files of random bytes of these sizes in the test's temp dir. */
function randomFiles (sizes: number[]): Promise<Array<{ path: string, data: Buffer }>> {
  return Promise.all(sizes.map(async (size, i) => {
    const data = randomBytes(size)
    const path = join(t.root, `f${i}`)
    await writeFile(path, data)
    return { path, data }
  }))
}

/** Submits every file at once and checks each answer against createHash on this thread. */
async function expectHashedAtOnce (pool: HashPool, files: Array<{ path: string, data: Buffer }>): Promise<void> {
  const got = await Promise.all(files.map((f) => pool.hash(f.path)))
  got.forEach((out, i) => {
    const { data } = files[i]!
    if (!out.ok) throw new Error(out.message)
    expect(out.size).toBe(data.length)
    expect(out.blake2b.equals(b2(data))).toBe(true)
    expect(out.sha512.equals(s512(data))).toBe(true)
    expect(out.stat.size).toBe(BigInt(data.length))
  })
}

describe('hashing in worker threads', () => {
  it('gives the digests createHash gives on the main thread: empty, small and multi-MiB files', async () => {
    const sizes = [0, 1, 1000, 1024 * 1024, 5 * 1024 * 1024 + 17]
    const files = await randomFiles(sizes)
    const pool = new HashPool({ size: 2 })
    try {
      await expectHashedAtOnce(pool, files)
      // The main-thread hashFile agrees, for the one streaming API that stays.
      const big = await hashFile(files[4]!.path)
      expect(big.blake2b.equals(b2(files[4]!.data))).toBe(true)
      // The counters say exactly what was read.
      expect(pool.filesHashed).toBe(sizes.length)
      expect(pool.bytesHashed).toBe(sizes.reduce((a, b) => a + b, 0))
    } finally {
      await pool.close()
    }
  })

  it('never follows a symlink, and reports a missing or replaced file instead of hashing it', async () => {
    await writeFile(join(t.root, 'secret'), 'not a distfile')
    await symlink(join(t.root, 'secret'), join(t.root, 'link.tar.gz'))
    await writeFile(join(t.root, 'a'), 'first')
    const listed = (await statFile(join(t.root, 'a')))!
    await writeFile(join(t.root, 'b'), 'second')
    await rename(join(t.root, 'b'), join(t.root, 'a'))
    await mkdir(join(t.root, 'dir'))
    const pool = new HashPool({ size: 1 })
    try {
      expect(await pool.hash(join(t.root, 'link.tar.gz'))).toMatchObject({ ok: false, code: 'ELOOP' })
      expect(await pool.hash(join(t.root, 'missing'))).toMatchObject({ ok: false, code: 'ENOENT' })
      expect(await pool.hash(join(t.root, 'dir'))).toMatchObject({ ok: false, code: 'ENOTFILE' })
      expect(await pool.hash(join(t.root, 'a'), listed)).toMatchObject({ ok: false, code: 'ECHANGED' })
      expect(pool.bytesHashed).toBe(0)
      expect(pool.filesHashed).toBe(0)
    } finally {
      await pool.close()
    }
  })

  it('close() is idempotent, and the pool refuses work afterwards', async () => {
    const pool = new HashPool()
    await writeFile(join(t.root, 'f'), 'x')
    expect((await pool.hash(join(t.root, 'f'))).ok).toBe(true)
    await Promise.all([pool.close(), pool.close()])
    await pool.close()
    const code = await pool.hash(join(t.root, 'f')).then(() => 'resolved', (err: StoreError) => err.code)
    expect(code).toBe('ERR_STORE_CLOSED')
  })

  it('cancels a hash in progress on close', async () => {
    await writeFile(join(t.root, 'big'), randomBytes(64 * 1024 * 1024))
    const pool = new HashPool({ size: 1 })
    const pending = pool.hash(join(t.root, 'big')).then(() => 'resolved', (err: StoreError) => err.code)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await pool.close()
    // Either it finished first or it was cancelled; it never hangs.
    expect(['resolved', 'ERR_STORE_CLOSED']).toContain(await pending)
    expect(pool.busy).toBe(0)
  })

  it('runs jobs pipelined two to a worker, each answered with its own file, in any number', async () => {
    const files = await randomFiles(Array.from({ length: 12 }, (_, i) => 1000 + i * 4096))
    const pool = new HashPool({ size: 2 })
    try {
      await expectHashedAtOnce(pool, files)
      expect(pool.filesHashed).toBe(files.length)
      expect(pool.busy).toBe(0)
    } finally {
      await pool.close()
    }
  })

  it('a job held behind the one a dying worker ran is run by a fresh worker, not failed', async () => {
    await writeFile(join(t.root, 'big'), randomBytes(8 * 1024 * 1024))
    await writeFile(join(t.root, 'small'), 'held')
    const pool = new HashPool({ size: 1 })
    try {
      const running = pool.hash(join(t.root, 'big')).then(() => 'resolved', (err: Error) => err.message)
      const held = pool.hash(join(t.root, 'small'))
      // Both are posted to the one worker; kill it while it reads the first.
      const slots = (pool as unknown as { slots: Set<{ worker: { terminate: () => Promise<number> }, jobs: unknown[] }> }).slots
      expect([...slots].map((s) => s.jobs.length)).toEqual([2])
      await [...slots][0]!.worker.terminate()
      // The running one either finished first or failed with the worker; the held one has the right digests either way.
      await running
      const out = await held
      if (!out.ok) throw new Error(out.message)
      expect(out.blake2b.equals(b2('held'))).toBe(true)
    } finally {
      await pool.close()
    }
  })

  it('warm() starts the workers before any job, and is a no-op after close()', async () => {
    const pool = new HashPool({ size: 2 })
    const slots = (pool as unknown as { slots: Set<unknown> }).slots
    pool.warm()
    expect(slots.size).toBe(2)
    pool.warm()
    expect(slots.size).toBe(2)
    expect(pool.busy).toBe(0)
    await writeFile(join(t.root, 'f'), 'x')
    expect((await pool.hash(join(t.root, 'f'))).ok).toBe(true)
    await pool.close()
    expect(slots.size).toBe(0)
    pool.warm()
    expect(slots.size).toBe(0)
  })
})

describe('hashing files as they are written (StreamHasher)', () => {
  it('gives BLAKE2B alone unless SHA512 is asked for; one stream at a time starts one worker, two at once start two', async () => {
    const hasher = new StreamHasher({ workers: 2 })
    try {
      const data = randomBytes(300_000)
      const path = join(t.root, 'f')
      await writeFile(path, data)
      for (let i = 0; i < 3; i++) {
        const s = hasher.open(path, false)
        s.feed(data.length)
        const d = await s.digest()
        expect([d.size, d.blake2b.equals(b2(data)), d.sha512.byteLength]).toEqual([data.length, true, 0])
      }
      expect(hasher.running).toBe(1)
      const [a, b] = [hasher.open(path, false), hasher.open(path, false)]
      for (const s of [a, b]) s.feed(data.length)
      for (const d of await Promise.all([a.digest(), b.digest()])) expect(d.blake2b.equals(b2(data))).toBe(true)
      expect(hasher.running).toBe(2)
      const both = hasher.open(path, true)
      both.feed(data.length)
      const d = await both.digest()
      expect(d.blake2b.equals(b2(data)) && d.sha512.equals(s512(data))).toBe(true)
    } finally {
      await hasher.close()
    }
  })
})
