/**
 * The build cache: a fetched build is placed only when SIZE, MD5 and SHA1
 * of its stanza match its bytes too (BLAKE2B and the advertised size are the
 * download's own check); its advertisement is kept beside it across restarts, and a file
 * without one is dropped.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { debugLogger } from '@distswarm/protocol'
import { createKeyPair, signBuild, verifyBuild, type BuildAd } from '@distswarm/swarm'
import { BuildCache, cacheName } from '../src/buildcache.js'
import { tempDir } from './util.js'

const keyPair = createKeyPair()
const hash = (algo: string, b: Buffer): string => createHash(algo).update(b).digest('hex')

function adFor (bytes: Buffer, fields: Record<string, string> = {}): BuildAd {
  return signBuild({
    blake2b: createHash('blake2b512').update(bytes).digest(),
    size: bytes.length,
    group: 'x86_64-pc-linux-gnu',
    fields: { CPV: 'app-misc/hello-1', PATH: 'app-misc/hello/hello-1-1.gpkg.tar', SIZE: String(bytes.length), MD5: hash('md5', bytes), SHA1: hash('sha1', bytes), ...fields }
  }, keyPair)
}

async function open (stateDir: string): Promise<BuildCache> {
  const cache = new BuildCache({ stateDir, verify: verifyBuild, logger: debugLogger('distswarm:test') })
  onTestFinished(() => cache.stop())
  await cache.start()
  return cache
}

/** Downloads `bytes` into the cache as `ad` says, through the writer the build Fetcher uses. */
async function place (cache: BuildCache, ad: BuildAd, bytes: Buffer): Promise<void> {
  const writer = cache.writer(() => ad)
  const download = await writer.begin({ name: cacheName(ad), size: ad.size, blake2b: ad.blake2b })
  await download.write([bytes], 0)
  expect(await download.verify()).toBeNull()
  try {
    await writer.commit(download)
  } catch (err) {
    await download.abort()
    throw err
  }
}

describe('BuildCache', () => {
  it('places a build whose MD5 and SHA1 match, and keeps it with its advertisement across a restart', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(100_000)
    const ad = adFor(bytes)
    const cache = await open(dir)
    await place(cache, ad, bytes)
    const hex = ad.blake2b.toString('hex')
    expect(cache.get(hex)?.file.path).toBe(join(dir, 'binpkgs', 'files', `${hex}.gpkg.tar`))
    await cache.stop()
    const again = await open(dir)
    expect(again.get(hex)?.ad.signature.equals(ad.signature)).toBe(true)
  })

  it('places nothing when the stanza\'s MD5 or SHA1 does not describe the bytes', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(50_000)
    const cache = await open(dir)
    for (const fields of [{ MD5: hash('md5', Buffer.from('other')) }, { SHA1: hash('sha1', Buffer.from('other')) }] as Array<Record<string, string>>) {
      const ad = adFor(bytes, fields)
      await expect(place(cache, ad, bytes)).rejects.toMatchObject({ code: 'ERR_VERIFY_FAILED', message: expect.stringMatching(/MD5|SHA1/) })
      expect(cache.get(ad.blake2b.toString('hex'))).toBeUndefined()
    }
    expect((await readdir(join(dir, 'binpkgs', 'files'))).filter((n) => !n.startsWith('.'))).toEqual([])
  })

  it('places nothing when the stanza\'s SIZE is not the size its advertisement was downloaded at', async () => {
    // The index serves the stanza's SIZE; a file of another size is one Portage downloads whole, then refuses.
    const dir = await tempDir()
    const bytes = randomBytes(50_000)
    const cache = await open(dir)
    const ad = adFor(bytes, { SIZE: String(bytes.length + 1) })
    await expect(place(cache, ad, bytes)).rejects.toMatchObject({ code: 'ERR_VERIFY_FAILED', message: expect.stringMatching(/SIZE/) })
    expect(cache.get(ad.blake2b.toString('hex'))).toBeUndefined()
    expect((await readdir(join(dir, 'binpkgs', 'files'))).filter((n) => !n.startsWith('.'))).toEqual([])
  })

  it('drops at start a file without an advertisement, and an advertisement whose signature fails', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(10_000)
    const ad = adFor(bytes)
    const cache = await open(dir)
    await place(cache, ad, bytes)
    await cache.stop()
    // A forged field: the signature no longer covers it.
    const path = join(dir, 'binpkgs', 'builds.json')
    const saved = JSON.parse(await readFile(path, 'utf8'))
    saved.builds[0].fields.USE = 'evil'
    await writeFile(path, JSON.stringify(saved))
    const again = await open(dir)
    expect(again.size).toBe(0)
    expect((await readdir(join(dir, 'binpkgs', 'files'))).filter((n) => !n.startsWith('.'))).toEqual([])
  })
})
