import { expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

const holders = async (control: string, name: string): Promise<number> => {
  const r = await cli(['where', name, '--control', control, '--json'])
  return r.code === 0 ? (JSON.parse(r.stdout) as WhereResult).remote[0]?.holders.length ?? 0 : 0
}

it('of two seeders that disagree, the one whose copy changed after indexing is found and blamed, and the file comes from the honest one', async () => {
  const net = await localNet()
  const f = distfile('shared-1.0.tar.xz', Buffer.alloc(8 * 1024 * 1024 + 3, 0x5a))
  for (const name of ['liar', 'honest']) await writeFile(join((await net.dirs(name)).distdir, f.name), f.data)

  // The liar is met first, so it is the first source tried.
  const [liar, box] = await Promise.all([net.startAgent({ name: 'liar' }), net.startAgent({ name: 'box' })])
  await waitFor(async () => await holders(box.control, f.name) === 1, 30_000, 'the liar\'s inventory at box')
  await net.startAgent({ name: 'honest' })
  await waitFor(async () => await holders(box.control, f.name) === 2, 30_000, 'both holders at box')

  // Same size, same timestamps, other bytes (one in each 4 MiB piece, so
  // whichever pieces the liar serves are wrong): nothing on its side notices.
  await alterInPlace(join(liar.distdir, f.name), (d) => { for (let o = 0; o < d.length; o += 4 * 1024 * 1024) d[o] = 0 })

  const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', box.control])
  expect(r!.ok).toBe(true)
  expect((await readFile(r!.result.path)).equals(f.data)).toBe(true)
  const peers = await cliJson<PeerInfo[]>(['peers', '--control', box.control])
  expect(Object.fromEntries(peers.map((p) => [p.name, p.faults]))).toEqual({ liar: 1, honest: 0 })

  // Told of the bad bytes, the liar re-hashes its copy and stops offering it under the old digest.
  const holdersOfOriginal = async (): Promise<string[]> => {
    const r = await cli(['where', f.blake2b, '--control', box.control, '--json'])
    return r.code === 0 ? (JSON.parse(r.stdout) as WhereResult).remote.flatMap((e) => e.holders.map((h) => h.name)) : []
  }
  await waitFor(async () => (await holdersOfOriginal()).join() === 'honest', 15_000, 'the liar to withdraw the digest it no longer has')
})
