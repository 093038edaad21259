import { expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { copyFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, cliJson, localNet, waitFor, writeRandomFile } from '../harness.js'

const MiB = 1024 * 1024
const SIZE = 256 * MiB

async function b2sum (path: string): Promise<string> {
  const h = createHash('blake2b512')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** Three seeders holding their own copies of one 256 MiB file, and a box that sees all three. */
async function threeSeeders (name: string, seederArgs: string[] = []) {
  const net = await localNet()
  const dirs = await Promise.all(['a', 'b', 'c'].map((n) => net.dirs(n)))
  const original = join(dirs[0]!.distdir, name)
  await writeRandomFile(original, SIZE)
  for (const d of dirs.slice(1)) await copyFile(original, join(d.distdir, name))
  const digest = await b2sum(original)
  const [a, b, c, box] = await Promise.all([
    ...['a', 'b', 'c'].map((n) => net.startAgent({ name: n, args: seederArgs })),
    net.startAgent({ name: 'box' })
  ])
  await waitFor(async () => {
    const r = await cli(['where', name, '--control', box!.control, '--json'])
    return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote[0]?.holders.length === 3
  }, 60_000, 'all three holders at the box')
  return { net, a: a!, b: b!, c: c!, box: box!, digest }
}

it('fetches 256 MiB from three seeders at once; the one whose copy changed after indexing is found by piece hashes and blamed alone', async () => {
  const name = 'firefox-999.0.source.tar.xz'
  const { a, b, c, box, digest } = await threeSeeders(name)
  // Same size and timestamps, one byte changed in every 4 MiB piece: whatever c serves is wrong.
  await alterInPlace(join(c.distdir, name), (d) => { for (let o = 0; o < d.length; o += 4 * MiB) d[o] = d[o]! ^ 0xff })

  const started = Date.now()
  const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', name, '--control', box.control])
  const ms = Date.now() - started
  expect(r!.ok).toBe(true)
  expect(await b2sum(r!.result.path)).toBe(digest)
  const peers = await cliJson<PeerInfo[]>(['peers', '--control', box.control])
  const faults = Object.fromEntries(peers.map((p) => [p.name, p.faults]))
  expect(faults).toEqual({ a: 0, b: 0, c: 1 })
  // Every seeder sent bytes: the pieces were spread over all three.
  for (const p of peers) expect(p.bytesReceived).toBeGreaterThan(4 * MiB)
  console.log(`e2e: 256 MiB from 3 seeders, 1 lying, found and fetched around in ${ms} ms; bytes from a/b/c: ${peers.map((p) => (p.bytesReceived / MiB).toFixed(0)).join('/')} MiB`)
  void a
  void b
}, 180_000)

it('fetches 256 MiB from three seeders when one is killed mid-transfer: the others finish it, with identical bytes', async () => {
  const name = 'chromium-999.0.tar.xz'
  // Over hyperswarm's stream (no fast path): slow enough to kill a seeder halfway.
  const { b, box, digest } = await threeSeeders(name, ['--data-port', 'off'])
  const fetching = cli(['fetch', name, '--control', box.control, '--json'], { timeoutMs: 150_000 })
  const partialDir = join(box.cacheDir, '.partial')
  const partialSize = async (): Promise<number> => {
    const [p] = await readdir(partialDir).catch(() => [])
    return p ? (await stat(join(partialDir, p)).catch(() => ({ size: 0 }))).size : 0
  }
  await waitFor(async () => await partialSize() > 32 * MiB, 60_000, 'the download to be under way', 20)
  const atKill = await partialSize()
  b.child.kill('SIGKILL')
  const out = await fetching
  expect(out.code).toBe(0)
  const [r] = JSON.parse(out.stdout) as Array<{ ok: boolean, result: FetchResult }>
  expect(r!.ok).toBe(true)
  expect(atKill).toBeLessThan(SIZE)
  expect(await b2sum(r!.result.path)).toBe(digest)
  expect(await readdir(box.cacheDir)).toEqual(expect.arrayContaining(['.partial', name]))
}, 180_000)
