import { expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, WhereResult } from '@distswarm/agent'
import { cli, localNet, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

it('fetch --from-file prefetches a list (names and name+digest lines) and sums up hits and misses', async () => {
  const net = await localNet()
  const files = [distfile('a-1.tar.gz'), distfile('b-2.tar.xz'), distfile('c-3.zip')]
  const seed = await net.dirs('seeder')
  for (const f of files) await writeFile(join(seed.distdir, f.name), f.data)
  const [, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box' })])
  await waitFor(async () => {
    const r = await cli(['where', 'c-3.zip', '--control', box.control, '--json'])
    return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 1
  }, 30_000, 'inventory at box')

  const list = join(net.root, 'list.txt')
  await writeFile(list, [
    '# from emerge -pf',
    'a-1.tar.gz',
    `b-2.tar.xz ${files[1]!.blake2b}`,
    '',
    'not-on-any-peer-9.tar.gz',
    `c-3.zip ${files[2]!.blake2b}`
  ].join('\n'))
  const r = await cli(['fetch', '--from-file', list, '--control', box.control])
  expect(r.code).toBe(1) // one file is on no peer
  expect(r.stdout).toMatch(/3 fetched \(.*\), 0 already here, 1 on no peer, 0 failed/)
  for (const f of files) expect((await readFile(join(box.cacheDir, f.name))).equals(f.data)).toBe(true)

  // again, as JSON: everything found is already here now
  const again = await cli(['fetch', '--from-file', list, '--control', box.control, '--json'])
  const outcomes = JSON.parse(again.stdout) as Array<{ ok: boolean, result?: FetchResult, error?: { code: string } }>
  expect(outcomes.map((o) => o.ok ? o.result!.source : o.error!.code)).toEqual(['local', 'local', 'ERR_NOT_FOUND', 'local'])

  const bad = join(net.root, 'bad.txt')
  await writeFile(bad, 'a-1.tar.gz not-a-digest\n')
  const usage = await cli(['fetch', '--from-file', bad, '--control', box.control])
  expect(usage.code).toBe(2)
  expect(usage.stderr).toMatch(/bad.txt:1/)
})
