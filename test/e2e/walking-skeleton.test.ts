import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, StatusResult, WhereResult } from '@distswarm/agent'
import { cli, cliJson, localNet, tempDir, waitFor, writeRandomFile } from '../harness.js'

const MiB = 1024 * 1024

describe('three agents on a local DHT', () => {
  it('B fetches A\'s 64 MiB distfile by name through the CLI; C, on another network, sees nothing', async () => {
    const started = Date.now()
    const net = await localNet()
    const aDirs = await net.dirs('a')
    await writeRandomFile(join(aDirs.distdir, 'big-1.0.tar.xz'), 64 * MiB)
    for (const [name, size] of [['small-a-1.tar.gz', 1000], ['small-b-2.zip', 77_777], ['empty-0.patch', 0]] as const) {
      await writeRandomFile(join(aDirs.distdir, name), size)
    }
    const [a, b, c] = await Promise.all([
      net.startAgent({ name: 'a' }),
      net.startAgent({ name: 'b' }),
      net.startAgent({ name: 'c', networkKey: randomBytes(32).toString('hex') })
    ])

    await waitFor(async () => {
      const r = await cli(['where', 'big-1.0.tar.xz', '--control', b.control, '--json'])
      return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 1
    }, 30_000, 'B to see big-1.0.tar.xz at A')
    const where = await cliJson<WhereResult>(['where', 'big-1.0.tar.xz', '--control', b.control])
    expect(where.remote[0]!.holders.map((h) => h.name)).toEqual(['a'])
    expect(where.remote[0]!.size).toBe(64 * MiB)

    const fetchStarted = Date.now()
    const [fetched] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', 'big-1.0.tar.xz', '--control', b.control])
    const fetchMs = Date.now() - fetchStarted
    expect(fetched!.ok).toBe(true)
    expect(fetched!.result.path).toBe(join(b.cacheDir, 'big-1.0.tar.xz'))
    const [original, copy] = await Promise.all([readFile(join(a.distdir, 'big-1.0.tar.xz')), readFile(fetched!.result.path)])
    expect(copy.equals(original)).toBe(true)
    expect((await stat(fetched!.result.path)).mode & 0o777).toBe(0o644)
    expect(await readdir(join(b.cacheDir, '.partial'))).toEqual([])

    // a file of zero bytes and a small one travel too
    const small = await cli(['fetch', 'empty-0.patch', 'small-b-2.zip', '--control', b.control])
    expect(small.code, small.stderr).toBe(0)

    const status = await cliJson<StatusResult>(['status', '--control', b.control])
    expect(status.fetches).toMatchObject({ completed: 3, failed: 0, inFlight: 0 })
    expect(status.peers).toBe(1)

    // C holds the wrong key: it never meets A or B, and finds nothing
    expect(await cliJson<PeerInfo[]>(['peers', '--control', c.control])).toEqual([])
    const none = await cli(['where', 'big-1.0.tar.xz', '--control', c.control, '--json'])
    expect(none.code).toBe(1)
    expect((JSON.parse(none.stdout) as WhereResult).remote).toEqual([])
    const miss = await cli(['fetch', 'big-1.0.tar.xz', '--control', c.control])
    expect(miss.code).toBe(1)
    expect(miss.stderr).toMatch(/no connected peer has big-1.0.tar.xz/)
    expect((await cliJson<PeerInfo[]>(['peers', '--control', a.control])).map((p) => p.name)).toEqual(['b'])

    console.info(`e2e: 64 MiB fetched in ${fetchMs} ms (${(64 / (fetchMs / 1000)).toFixed(1)} MiB/s including CLI start); whole test ${Date.now() - started} ms`)
  })

  it('keeps the exit code contract: 2 for usage, 3 when no agent answers', async () => {
    const root = await tempDir()
    expect((await cli(['fetch', '--control', join(root, 'x.sock')])).code).toBe(2)
    expect((await cli(['status', '--bogus-flag'])).code).toBe(2)
    expect((await cli(['no-such-command'])).code).toBe(2)
    const down = await cli(['status', '--control', join(root, 'nobody.sock')])
    expect(down.code).toBe(3)
    expect(down.stderr).toMatch(/no agent answers/)
    const noKey = await cli(['agent', '--bootstrap', '127.0.0.1:1', '--control', join(root, 'a.sock'), '--state-dir', root], { env: { DISTSWARM_NETWORK_KEY: '' } })
    expect(noKey.code).toBe(2)
    expect(noKey.stderr).toMatch(/network key/)
  })
})
