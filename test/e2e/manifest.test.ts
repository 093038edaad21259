import { expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, StatusResult, WhereResult } from '@distswarm/agent'
import { cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile, mirror, portageArgv, writeRepo } from '../gentoo.js'

it('Manifests are the trust anchor: a mismatching copy is not advertised, a fetch by name takes the Manifest digest', async () => {
  const net = await localNet()
  const hit = distfile('hit-1.0.tar.gz')
  const wanted = distfile('renamed-4.0.tar.gz') // the Manifest's
  const impostor = distfile('renamed-4.0.tar.gz') // same name, other bytes
  const repo = join(net.root, 'repos', 'gentoo')
  await writeRepo(repo, [hit, wanted])
  const up = await mirror([hit, wanted])

  const seed = await net.dirs('seeder')
  for (const f of [hit, impostor]) await writeFile(join(seed.distdir, f.name), f.data)
  const overlay = await net.dirs('overlay') // an agent that knows no Manifest, holding the impostor
  await writeFile(join(overlay.distdir, impostor.name), impostor.data)
  const [, box] = await Promise.all([
    net.startAgent({ name: 'seeder', args: ['--repo', repo] }),
    net.startAgent({ name: 'box', args: ['--repo', repo] }),
    net.startAgent({ name: 'overlay' })
  ])
  await waitFor(async () => (await box.status()).peers === 2, 30_000, 'box to meet both')
  await waitFor(async () => (await cli(['where', hit.name, '--control', box.control])).code === 0, 30_000, 'inventory at box')

  const status = await cliJson<StatusResult>(['status', '--control', box.control])
  expect(status.manifest).toEqual({ repos: [repo], names: 2, problems: 0 })

  // The seeder holds a renamed-4.0.tar.gz that contradicts its Manifest: it does not advertise it.
  const where = await cliJson<WhereResult>(['where', impostor.name, '--control', box.control])
  expect(where.remote.map((r) => r.holders.map((h) => h.name))).toEqual([['overlay']])

  // By name, box asks for the Manifest's file: the overlay's impostor is not it.
  const byName = await cli(['fetch', impostor.name, '--control', box.control])
  expect(byName.code).toBe(1)
  expect(byName.stderr).toMatch(/no connected peer has/)
  const [ok] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', hit.name, '--control', box.control])
  expect(ok!.result.blake2b).toBe(hit.blake2b)

  // Old Portage passes no ${DIGESTS}: the adaptor asks by name, the agent pins the Manifest digest.
  const conf = (await cli(['portage-config', '--control', box.control])).stdout
  // The running agent's cache dir, not a default.
  expect(conf).toContain(`PORTAGE_RO_DISTDIRS="${box.cacheDir}"`)
  for (const [f, fromSwarm] of [[hit, true], [wanted, false]] as const) {
    const file = `${f.name}.__download__`
    const argv = portageArgv(conf, 'FETCHCOMMAND', { URI: up.url(f.name), DISTDIR: box.distdir, FILE: file })
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' })
    const [code] = await once(child, 'exit') as [number]
    expect(code).toBe(0)
    expect((await readFile(join(box.distdir, file))).equals(f.data)).toBe(true)
    expect(up.requests.get(f.name) ?? 0).toBe(fromSwarm ? 0 : 1)
  }

  // A sync makes the seeder's copy the Manifest's: the seeder advertises it
  // now, without a restart (the repos are looked at once a minute).
  await writeRepo(repo, [hit, impostor])
  const holdersOfImpostor = async (): Promise<string[]> => {
    const w = await cliJson<WhereResult>(['where', impostor.blake2b, '--control', box.control])
    return w.remote.flatMap((r) => r.holders.map((h) => h.name)).sort()
  }
  await waitFor(async () => (await holdersOfImpostor()).join() === 'overlay,seeder', 90_000, 'the seeder to advertise the copy its Manifest now names', 500)
}, 180_000)
