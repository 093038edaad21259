import { expect, it } from 'vitest'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { WhereResult } from '@distswarm/agent'
import { cliJson, localNet, waitFor } from '../harness.js'
import { distfile, emergeFetch, makeConf, mirror } from '../gentoo.js'

const holdersAt = async (control: string, query: string): Promise<string[]> =>
  (await cliJson<WhereResult>(['where', query, '--control', control])).remote.flatMap((r) => r.holders.map((h) => h.name)).sort()

it('a download named by its BLAKE2B is checked by it alone; a SHA512 that is the only anchor is computed and checked, and a holder is not blamed for it', async () => {
  const net = await localNet()
  const f = distfile('tarball-1.0.tar.gz')
  const up = await mirror([f])
  await writeFile(join((await net.dirs('seeder')).distdir, f.name), f.data)
  const [seeder, relay, box] = await Promise.all(['seeder', 'relay', 'box'].map((name) => net.startAgent({ name })))
  await waitFor(async () => (await holdersAt(relay!.control, f.name)).includes('seeder'), 30_000, 'relay to see the seeder\'s file')

  // Portage names both digests: the BLAKE2B is the check, so the SHA512 is not computed (Portage checks both itself).
  const viaRelay = await emergeFetch(await makeConf(relay!.control), relay!.distdir, f, up.url(f.name))
  expect(viaRelay.code, viaRelay.stderr).toBe(0)
  expect(viaRelay.stderr).toMatch(/from the swarm/)
  expect(up.requests.get(f.name)).toBeUndefined()
  const atRelay = await cliJson<WhereResult>(['where', f.name, '--control', relay!.control])
  expect(atRelay.local.map((l) => [l.blake2b, l.sha512])).toEqual([[f.blake2b, '']])

  // Only the relay holds it now, advertising no SHA512.
  await seeder!.stop()
  await waitFor(async () => (await holdersAt(box!.control, f.name)).join() === 'relay', 30_000, 'box to see only the relay')
  const conf = await makeConf(box!.control)

  // An overlay's Manifest with SHA512 alone, naming other bytes: computed, refused, the mirror's copy used, the relay not blamed.
  const other = distfile(f.name)
  const refused = await emergeFetch(conf, box!.distdir, f, up.url(f.name), `sha512:${other.sha512}`)
  expect(refused.code, refused.stderr).toBe(0)
  expect(refused.stderr).toMatch(/not from the swarm .*SHA512/)
  expect(up.requests.get(f.name)).toBe(1)
  expect(await readdir(box!.cacheDir)).not.toContain(f.name)
  expect(await readdir(join(box!.cacheDir, '.partial'))).toEqual([])
  expect(box!.log.filter((l) => l.includes('peer.fault'))).toEqual([])

  // Its own SHA512 alone: computed and checked, then known to box.
  const ok = await emergeFetch(conf, box!.distdir, f, up.url(f.name), `sha512:${f.sha512}`)
  expect(ok.code, ok.stderr).toBe(0)
  expect(ok.stderr).toMatch(/from the swarm/)
  expect(up.requests.get(f.name)).toBe(1)
  const atBox = await cliJson<WhereResult>(['where', f.name, '--control', box!.control])
  expect(atBox.local.map((l) => [l.blake2b, l.sha512])).toEqual([[f.blake2b, f.sha512]])
}, 120_000)
