import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, GcResult, StatusResult, WhereResult } from '@distswarm/agent'
import { cli, cliJson, localNet, waitFor, type AgentProc } from '../harness.js'
import { digestsOf, distfile, writeRepo, type Distfile } from '../gentoo.js'

const KiB = 1024
const S = 100 * KiB

const fetchOne = async (agent: AgentProc, query: string): Promise<FetchResult> => {
  const [o] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', query, '--control', agent.control])
  expect(o!.ok).toBe(true)
  return o!.result
}

/** Names of the peers `agent` sees holding `f` (none: `where` exits 1, which polling must outlast). */
const holders = async (agent: AgentProc, f: Distfile): Promise<string[]> => {
  const r = await cli(['where', f.blake2b, '--control', agent.control, '--json'])
  if (r.code === 1) return []
  if (r.code !== 0) throw new Error(`distswarm where exited ${r.code}: ${r.stderr}`)
  return (JSON.parse(r.stdout) as WhereResult).remote.flatMap((h) => h.holders.map((p) => p.name))
}

const cacheNames = async (agent: AgentProc): Promise<string[]> => (await readdir(agent.cacheDir)).filter((n) => n !== '.partial').sort()

describe('cache quota', () => {
  it('gc takes unreferenced files first, then the least recently used, keeps the only copy on the network and never touches DISTDIR', async () => {
    const net = await localNet()
    const alpha = distfile('alpha-1.tar.gz', randomBytes(S))
    const solo = distfile('solo-1.tar.gz', randomBytes(S)) // no Manifest lists it, and soon only box holds it
    const delta = distfile('delta-1.tar.gz', randomBytes(S))
    const echo = distfile('echo-1.tar.gz', randomBytes(S))
    const orphan = distfile('orphan-1.tar.gz', randomBytes(S)) // no Manifest lists it
    const own = distfile('portage-own-1.tar.gz', randomBytes(6 * S)) // Portage's own download on box
    const repo = join(net.root, 'repos', 'gentoo')
    await writeRepo(repo, [alpha, delta, echo])

    const seedDirs = await net.dirs('seeder')
    for (const f of [alpha, solo, delta, echo, orphan]) await writeFile(join(seedDirs.distdir, f.name), f.data)
    const boxDirs = await net.dirs('box')
    await writeFile(join(boxDirs.distdir, own.name), own.data)
    const boxArgs = ['--repo', repo]
    const [seeder, firstBox] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box', args: boxArgs })])
    let box = firstBox
    await waitFor(async () => (await holders(box, orphan)).length === 1, 30_000, 'the seeder\'s inventory at box')

    // Filled one after the other, so their mtimes are in this order; delta the way emerge gets it,
    // linked into DISTDIR by portage-fetch, then renamed into place by Portage.
    await fetchOne(box, alpha.name)
    await fetchOne(box, solo.name)
    const placed = await cli(['portage-fetch', '--control', box.control, 'http://127.0.0.1:1/unused', box.distdir, `${delta.name}.__download__`, digestsOf(delta)])
    expect(placed.code, placed.stderr).toBe(0)
    await rename(join(box.distdir, `${delta.name}.__download__`), join(box.distdir, delta.name))
    await fetchOne(box, echo.name)
    await fetchOne(box, orphan.name)
    // Used again: the oldest file is now the most recently used.
    expect((await fetchOne(box, alpha.name)).source).toBe('local')

    // solo leaves the seeder: box holds the network's only copy.
    await rm(join(seeder.distdir, solo.name))
    await waitFor(async () => (await cliJson<WhereResult>(['where', solo.blake2b, '--control', seeder.control])).local.length === 0, 15_000, 'the seeder to drop solo')

    // A quota lowered across a restart: 5 files of 100 KiB in the cache, room for 3.5. Use times come back from the state dir.
    await box.stop()
    box = await net.startAgent({ name: 'box', args: [...boxArgs, '--cache-max-size', '350K'] })
    await waitFor(async () => {
      const seen = await Promise.all([alpha, delta, echo, orphan].map((f) => holders(box, f)))
      return seen.every((h) => h.length === 1)
    }, 30_000, 'box to hear the seeder\'s inventory again')
    expect(await holders(box, solo)).toEqual([])
    const status = await cliJson<StatusResult>(['status', '--control', box.control])
    expect(status.cache).toEqual({ bytes: 5 * S, maxBytes: 350 * KiB })

    const expected = [
      { name: orphan.name, reason: 'unreferenced', peers: 1 },
      { name: delta.name, reason: 'least-recently-used', peers: 1 }
    ]
    const totals = { maxBytes: 350 * KiB, bytesBefore: 5 * S, filesBefore: 5, bytesAfter: 3 * S, filesAfter: 3, overBy: 150 * KiB }
    const dry = await cliJson<GcResult>(['gc', '--dry-run', '--control', box.control])
    expect(dry).toMatchObject({ cacheDir: box.cacheDir, dryRun: true, ...totals })
    expect(dry.files).toEqual(expected.map((e) => expect.objectContaining({ ...e, size: S, path: join(box.cacheDir, e.name), removed: false }) as unknown))
    expect(await cacheNames(box)).toEqual([alpha.name, delta.name, echo.name, orphan.name, solo.name])
    const text = await cli(['gc', '--dry-run', '--control', box.control])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`would remove +${orphan.name} +100\\.0 KiB +no Manifest lists it`))

    const applied = await cliJson<GcResult>(['gc', '--control', box.control])
    expect(applied).toMatchObject({ dryRun: false, ...totals })
    expect(applied.files).toEqual(dry.files.map((f) => ({ ...f, removed: true })))
    expect(await cacheNames(box)).toEqual([alpha.name, echo.name, solo.name])
    expect((await cliJson<StatusResult>(['status', '--control', box.control])).cache.bytes).toBe(3 * S)

    // DISTDIR is Portage's: its own file and the link portage-fetch made are intact. delta's bytes stay
    // on box under DISTDIR's name, so box still offers delta; orphan is withdrawn from peers.
    expect((await readFile(join(box.distdir, own.name))).equals(own.data)).toBe(true)
    expect((await readFile(join(box.distdir, delta.name))).equals(delta.data)).toBe(true)
    await waitFor(async () => (await holders(seeder, orphan)).length === 0, 15_000, 'the seeder to hear that box dropped orphan')
    expect(await holders(seeder, delta)).toEqual(['box'])

    // box keeps serving: the seeder takes back the copy only box held.
    const back = await fetchOne(seeder, solo.name)
    expect(back.source).toBe('swarm')
    expect((await readFile(back.path)).equals(solo.data)).toBe(true)
    expect((await cliJson<GcResult>(['gc', '--dry-run', '--control', box.control])).files).toEqual([])
  })

  it('a fetch that takes the cache over its quota evicts the least recently used (a peer\'s download is a use), never the file it is returning', async () => {
    const net = await localNet()
    const [f1, f2, f3, f4] = [1, 2, 3, 4].map((i) => distfile(`f${i}-1.tar.gz`, randomBytes(S))) as [Distfile, Distfile, Distfile, Distfile]
    const big = distfile('big-1.tar.xz', randomBytes(4 * S))
    const seedDirs = await net.dirs('seeder')
    for (const f of [f1, f2, f3, f4, big]) await writeFile(join(seedDirs.distdir, f.name), f.data)
    const [seeder, box, reader] = await Promise.all([
      net.startAgent({ name: 'seeder' }),
      net.startAgent({ name: 'box', args: ['--cache-max-size', '350K'] }),
      net.startAgent({ name: 'reader' })
    ])
    await waitFor(async () => (await holders(box, big)).length === 1, 30_000, 'the seeder\'s inventory at box')

    for (const f of [f1, f2, f3]) await fetchOne(box, f.name)
    expect(await cacheNames(box)).toEqual([f1.name, f2.name, f3.name])
    // f1, the oldest, leaves the seeder; reader downloads it from box, which makes it box's most recently used.
    await rm(join(seeder.distdir, f1.name))
    await waitFor(async () => (await holders(reader, f1)).join() === 'box', 15_000, 'reader to see only box holding f1')
    expect((await fetchOne(reader, f1.name)).source).toBe('swarm')
    await waitFor(async () => (await holders(box, f1)).includes('reader'), 15_000, 'box to see reader holding f1')

    await fetchOne(box, f4.name)
    expect(await cacheNames(box)).toEqual([f1.name, f3.name, f4.name])
    await waitFor(async () => !(await holders(seeder, f2)).includes('box'), 15_000, 'the seeder to hear that box dropped f2')

    // Bigger than the quota on its own: everything else goes, and it stays until its fetch has returned.
    const got = await fetchOne(box, big.name)
    expect((await readFile(got.path)).equals(big.data)).toBe(true)
    expect(await cacheNames(box)).toEqual([big.name])
    const dry = await cliJson<GcResult>(['gc', '--dry-run', '--control', box.control])
    expect(dry).toMatchObject({ bytesBefore: 4 * S, overBy: 50 * KiB, bytesAfter: 0 })
    expect(dry.files.map((f) => f.name)).toEqual([big.name])
  })
})
