/**
 * Binary packages hashed in the store's pool (BLAKE2B, MD5, SHA1 in one
 * read), their digests kept in the state dir so a restart does not read an
 * unchanged package again.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '@distswarm/protocol'
import { Store } from '../src/index.js'

async function setup (): Promise<{ dir: string, open: () => Promise<Store> }> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-buildhashes-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'pkgdir'))
  const open = async (): Promise<Store> => {
    const store = new Store({ cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state') })
    onTestFinished(() => store.stop())
    await store.start()
    return store
  }
  return { dir, open }
}

const digests = (bytes: Buffer): { size: number, blake2b: string, md5: string, sha1: string } => ({
  size: bytes.length,
  blake2b: createHash('blake2b512').update(bytes).digest('hex'),
  md5: createHash('md5').update(bytes).digest('hex'),
  sha1: createHash('sha1').update(bytes).digest('hex')
})

describe('Store.hashBuild', () => {
  it('hashes a package in the pool once, and not again after a restart while its stat is unchanged', async () => {
    const { dir, open } = await setup()
    const path = join(dir, 'pkgdir', 'hello-1-1.gpkg.tar')
    const bytes = randomBytes(3 * 1024 * 1024 + 17)
    await writeFile(path, bytes)
    const first = await open()
    expect(await first.hashBuild(path)).toEqual(digests(bytes))
    expect(first.stats.filesHashed).toBe(1)
    expect(await first.hashBuild(path)).toEqual(digests(bytes))
    expect(first.stats.filesHashed).toBe(1)
    await first.stop()
    expect(JSON.parse(await readFile(join(dir, 'state', 'binpkg-hashes.json'), 'utf8')).rows).toHaveLength(1)

    const second = await open()
    expect(await second.hashBuild(path)).toEqual(digests(bytes))
    expect(second.stats.filesHashed).toBe(0)
    // Rewritten: read again.
    const other = randomBytes(1000)
    await writeFile(path, other)
    expect(await second.hashBuild(path)).toEqual(digests(other))
    expect(second.stats.filesHashed).toBe(1)
  })

  it('keeps nothing for remember: false, forgets what retain() leaves out, and refuses what is not a regular file', async () => {
    const { dir, open } = await setup()
    const a = join(dir, 'pkgdir', 'a-1-1.gpkg.tar')
    const b = join(dir, 'pkgdir', 'b-1-1.gpkg.tar')
    await writeFile(a, 'a')
    await writeFile(b, 'b')
    const store = await open()
    await store.hashBuild(a, { remember: false })
    await store.hashBuild(a, { remember: false })
    expect(store.stats.filesHashed).toBe(2)
    await store.hashBuild(b)
    store.retainBuildHashes(new Set(), join(dir, 'pkgdir'))
    await store.hashBuild(b)
    expect(store.stats.filesHashed).toBe(4)
    await expect(store.hashBuild(join(dir, 'pkgdir'))).rejects.toMatchObject({ code: 'ENOTFILE' })
    await expect(store.hashBuild(join(dir, 'pkgdir', 'gone'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('starts afresh, with a warning, from a record it cannot read; rows that are not its own are skipped', async () => {
    const { dir } = await setup()
    await mkdir(join(dir, 'state'), { recursive: true })
    const path = join(dir, 'pkgdir', 'a-1-1.gpkg.tar')
    await writeFile(path, 'a')
    for (const [text, warned] of [['garbage', true], ['{"version": 1, "rows": [["/x", "1"]]}', false]] as const) {
      await writeFile(join(dir, 'state', 'binpkg-hashes.json'), text)
      const lines: string[] = []
      const at = (level: string) => (event: string): void => { lines.push(`${level} ${event}`) }
      const logger: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => logger }
      const store = new Store({ cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), logger })
      onTestFinished(() => store.stop())
      await store.start()
      expect(await store.hashBuild(path)).toEqual(digests(Buffer.from('a')))
      expect(lines.includes('warn binpkg-hashes.unusable')).toBe(warned)
      await store.stop()
    }
  })
})
