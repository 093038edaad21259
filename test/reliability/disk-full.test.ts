import { describe, expect, it } from 'vitest'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult } from '@distswarm/agent'
import { cli, cliJson, localNet, smallDisk, smallDiskKinds, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

const MiB = 1024 * 1024

type Outcome = { ok: true, result: FetchResult } | { ok: false, error: { code: string, message: string } }

// Every kind this machine offers: as root both, so the injected fallback CI may use is exercised here too.
describe.each(smallDiskKinds())('a receiving agent whose cache dir fills up (%s)', (kind) => {
  it('fails the fetch with ERR_DISK_FULL, publishes nothing, and goes on fetching and serving', async () => {
    const net = await localNet()
    const big = distfile('big-1.0.tar.xz', Buffer.alloc(12 * MiB, 0x61)) // more than the 8 MiB disk
    const small = distfile('small-1.0.tar.gz', Buffer.alloc(MiB, 0x62))
    const own = distfile('own-1.0.tar.gz') // only the box has it
    const seed = await net.dirs('seeder')
    for (const f of [big, small]) await writeFile(join(seed.distdir, f.name), f.data)
    const boxDirs = await net.dirs('box')
    await writeFile(join(boxDirs.distdir, own.name), own.data)
    const env = await smallDisk(kind, boxDirs.cacheDir, 8 * MiB)
    const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box', env })])
    await waitFor(async () => (await cli(['where', big.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')

    const r = await cli(['fetch', big.name, '--control', box.control, '--json'])
    expect(r.code).toBe(1)
    const [failed] = JSON.parse(r.stdout) as Outcome[]
    expect(failed!.ok ? 'ok' : failed!.error.code).toBe('ERR_DISK_FULL')
    // Said the way people read it, and again on a second try: the first left nothing behind that blocks it.
    const again = await cli(['fetch', big.name, '--control', box.control])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/big-1\.0\.tar\.xz: no space left on the device/)

    // Portage sees nothing, and the partial is gone: its space is free again.
    expect(await readdir(box.cacheDir)).toEqual(['.partial'])
    expect(await readdir(join(box.cacheDir, '.partial'))).toEqual([])

    // What fits still comes in, and the box still serves its own files.
    const [got] = await cliJson<Outcome[]>(['fetch', small.name, '--control', box.control])
    expect(got!.ok).toBe(true)
    expect((await readFile(join(box.cacheDir, small.name))).equals(small.data)).toBe(true)
    const [served] = await cliJson<Outcome[]>(['fetch', own.name, '--control', seeder.control])
    expect(served!.ok && served!.result.source).toBe('swarm')
    expect((await readFile(join(seeder.cacheDir, own.name))).equals(own.data)).toBe(true)
    expect((await readdir(box.cacheDir)).sort()).toEqual(['.partial', small.name])
  })
})
