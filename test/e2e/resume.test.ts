import { expect, it } from 'vitest'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult } from '@distswarm/agent'
import { cli, cliJson, localNet, waitFor, writeRandomFile } from '../harness.js'

const MiB = 1024 * 1024

/**
 * A seeder holding a 160 MiB file and a box that has begun fetching it:
 * resolves once more than 24 MiB sit in the box's partial file. The seeder
 * serves over hyperswarm's UDX stream, slow enough to interrupt.
 */
async function fetchUnderWay (name: string) {
  const net = await localNet()
  const seedDirs = await net.dirs('seeder')
  await writeRandomFile(join(seedDirs.distdir, name), 160 * MiB)
  const seederArgs = ['--data-port', 'off']
  const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder', args: seederArgs }), net.startAgent({ name: 'box' })])
  await waitFor(async () => (await cli(['where', name, '--control', box.control])).code === 0, 30_000, 'inventory at box')
  const fetching = cli(['fetch', name, '--control', box.control])
  const partialDir = join(box.cacheDir, '.partial')
  const partialSize = async (): Promise<number> => {
    const [p] = await readdir(partialDir).catch(() => [])
    return p ? (await stat(join(partialDir, p))).size : 0
  }
  await waitFor(async () => await partialSize() > 24 * MiB, 30_000, 'the download to be under way')
  const original = (): Promise<Buffer> => readFile(join(seedDirs.distdir, name))
  return { net, seeder, seederArgs, box, fetching, partialSize, original }
}

it('a fetch whose only seeder is killed mid-transfer fails cleanly, and resumes from the bytes on disk once it is back', async () => {
  const name = 'big-2.0.tar.xz'
  const { net, seeder, seederArgs, box, fetching, partialSize, original } = await fetchUnderWay(name)
  seeder.child.kill('SIGKILL')
  const failed = await fetching
  expect(failed.code).toBe(1)
  expect(failed.stderr).toMatch(/big-2.0.tar.xz: every peer that has it failed|no connected peer has/)
  expect(await readdir(box.cacheDir)).toEqual(['.partial']) // nothing published
  const kept = await partialSize()
  expect(kept).toBeGreaterThan(24 * MiB)

  await net.startAgent({ name: 'seeder', args: seederArgs }) // same dirs, same identity
  await waitFor(async () => (await cli(['where', name, '--control', box.control])).code === 0, 30_000, 'the seeder to be back')
  const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', name, '--control', box.control])
  expect(r!.ok).toBe(true)
  expect(r!.result.resumedFrom).toBe(kept)
  expect((await readFile(r!.result.path)).equals(await original())).toBe(true)
})

it('a receiving agent killed mid-write leaves nothing visible in its cache dir, and resumes after a restart', async () => {
  const name = 'big-3.0.tar.xz'
  const { net, box, fetching, partialSize, original } = await fetchUnderWay(name)
  box.child.kill('SIGKILL')
  expect((await fetching).code).toBe(3) // the CLI lost its agent
  expect(await readdir(box.cacheDir)).toEqual(['.partial']) // Portage sees nothing
  const kept = await partialSize()

  const again = await net.startAgent({ name: 'box' })
  expect(await readdir(again.cacheDir)).toEqual(['.partial'])
  await waitFor(async () => (await cli(['where', name, '--control', again.control])).code === 0, 30_000, 'inventory after the restart')
  const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', name, '--control', again.control])
  expect(r!.result.resumedFrom).toBeGreaterThan(0)
  expect(r!.result.resumedFrom).toBeLessThanOrEqual(kept)
  expect((await readFile(r!.result.path)).equals(await original())).toBe(true)
})
