import { expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo } from '@distswarm/agent'
import { cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

it('transfers over the TCP fast path when both agents have it, over hyperswarm when one has it off', async () => {
  const net = await localNet()
  const f = distfile('fast-1.0.tar.xz', Buffer.alloc(16 * 1024 * 1024 + 1, 0x42))
  for (const name of ['seeder', 'legacy']) await writeFile(join((await net.dirs(name)).distdir, f.name), f.data)
  const [seeder, box, legacy] = await Promise.all([
    net.startAgent({ name: 'seeder' }),
    net.startAgent({ name: 'box' }),
    net.startAgent({ name: 'legacy', args: ['--data-port', 'off'] })
  ])
  const paths = async (): Promise<Record<string, string>> =>
    Object.fromEntries((await cliJson<PeerInfo[]>(['peers', '--control', box.control])).map((p) => [p.name, p.path]))
  await waitFor(async () => {
    const p = await paths()
    return p.seeder === 'tcp' && p.legacy === 'hyperswarm'
  }, 30_000, 'box to meet both, with a TCP link to the seeder only')

  // from the seeder, over TCP
  const [viaTcp] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', box.control])
  expect((await readFile(viaTcp!.result.path)).equals(f.data)).toBe(true)
  // the legacy agent can only get it over hyperswarm, from the box or the seeder
  const [viaUdx] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', legacy.control])
  expect(viaUdx!.result.source).toBe('local') // it had its own copy…
  const other = distfile('only-on-box.tar.gz')
  await writeFile(join(box.distdir, other.name), other.data)
  await waitFor(async () => (await cli(['where', other.name, '--control', legacy.control])).code === 0, 15_000, 'the watcher to share it')
  const [fromBox] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', other.name, '--control', legacy.control])
  expect((await readFile(fromBox!.result.path)).equals(other.data)).toBe(true) // …and fetches this one over hyperswarm
  expect((await seeder.status()).dataPort).toBeGreaterThan(0)
  expect((await legacy.status()).dataPort).toBeNull()
})
