import { expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, VerifyResult, WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile, writeRepo } from '../gentoo.js'

const blake2b = (data: Buffer): string => createHash('blake2b512').update(data).digest('hex')

it('verify finds cache files whose bytes changed or contradict their Manifest entry, and --remove deletes them and withdraws them from peers', async () => {
  const net = await localNet()
  const x = distfile('xfile-1.0.tar.gz')
  const y = distfile('yfile-2.0.tar.xz')
  const z = distfile('zz-3.0.tar.gz') // the Manifest's
  const zImpostor = distfile(z.name) // a peer's file of that name, other bytes
  const w = distfile('portage-own-4.0.tar.gz')
  const wOther = distfile(w.name)
  const repo = join(net.root, 'repos', 'gentoo')
  await writeRepo(repo, [z, w])

  const seedDirs = await net.dirs('seeder')
  for (const f of [x, y, zImpostor]) await writeFile(join(seedDirs.distdir, f.name), f.data)
  // Portage's DISTDIR on box holds a file that contradicts its Manifest entry: not verify's business.
  const boxDirs = await net.dirs('box')
  await writeFile(join(boxDirs.distdir, wOther.name), wOther.data)
  const [seeder, box] = await Promise.all([
    net.startAgent({ name: 'seeder' }),
    net.startAgent({ name: 'box', args: ['--repo', repo] })
  ])
  await waitFor(async () => (await cli(['where', x.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')

  const fetched = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', x.name, y.name, '--control', box.control])
  expect(fetched.map((o) => o.ok)).toEqual([true, true])

  const good = await cli(['verify', '--json', '--control', box.control])
  expect(good.code, good.stderr).toBe(0)
  expect(JSON.parse(good.stdout) as VerifyResult).toEqual({ cacheDir: box.cacheDir, checked: 2, bytes: x.data.length + y.data.length, bad: [] })

  // By digest, box takes the impostor, which its Manifest contradicts; and x changes on disk behind the index.
  const [imp] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', zImpostor.blake2b, '--control', box.control])
  expect(imp!.result.path).toBe(join(box.cacheDir, z.name))
  const xPath = join(box.cacheDir, x.name)
  await alterInPlace(xPath, (d) => { d[1000] = d[1000]! ^ 0xff })
  const altered = blake2b(await readFile(xPath))
  const holdersOfX = async (): Promise<string[]> =>
    (await cliJson<WhereResult>(['where', x.blake2b, '--control', seeder.control])).remote.flatMap((r) => r.holders.map((h) => h.name))
  expect(await holdersOfX()).toEqual(['box'])

  const expectedBad = [
    { path: xPath, name: x.name, expected: x.blake2b, actual: altered, reason: 'changed', detail: expect.any(String) as string, removed: false },
    { path: join(box.cacheDir, z.name), name: z.name, expected: z.blake2b, actual: zImpostor.blake2b, reason: 'manifest', detail: expect.any(String) as string, removed: false }
  ]
  const bad = await cli(['verify', '--json', '--control', box.control])
  expect(bad.code, bad.stderr).toBe(1)
  expect(JSON.parse(bad.stdout) as VerifyResult).toEqual({ cacheDir: box.cacheDir, checked: 3, bytes: expect.any(Number) as number, bad: expectedBad })
  const text = await cli(['verify', '--control', box.control])
  expect(text.code).toBe(1)
  expect(text.stdout).toContain(`BAD  ${xPath}  changed`)
  expect(text.stdout).toContain(`actual   BLAKE2B ${altered}`)
  // Without --remove nothing changed.
  expect((await readdir(box.cacheDir)).sort()).toEqual(['.partial', x.name, y.name, z.name])

  const removed = await cli(['verify', '--remove', '--json', '--control', box.control])
  expect(removed.code, removed.stderr).toBe(1)
  expect((JSON.parse(removed.stdout) as VerifyResult).bad).toEqual(expectedBad.map((b) => ({ ...b, removed: true })))
  expect((await readdir(box.cacheDir)).sort()).toEqual(['.partial', y.name])
  await waitFor(async () => (await holdersOfX()).length === 0, 15_000, 'the seeder to hear that box no longer holds x')

  // DISTDIR is Portage's: its contradicting file is still there; the cache is good again.
  expect((await readFile(join(box.distdir, w.name))).equals(wOther.data)).toBe(true)
  const after = await cli(['verify', '--json', '--control', box.control])
  expect(after.code, after.stderr).toBe(0)
  expect(JSON.parse(after.stdout) as VerifyResult).toMatchObject({ checked: 1, bad: [] })
})
