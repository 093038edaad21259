/**
 * Issue 13 end to end: real agents with real-format PKGDIRs (a Packages index
 * as Portage writes it, gpkg files as tar archives with the gpkg layout).
 * Two builders made dev-db/mariadb-11.4.5 with USE -minimal and minimal; a
 * third box's /binpkgs/Packages lists both with unique PATHs, and wget, run
 * as Portage's FETCHCOMMAND, downloads both with the bytes, SIZE, MD5 and
 * SHA1 right. An untrusted builder's package is absent; a lying holder is
 * caught and the build comes from an honest one; a build added to a PKGDIR
 * appears on the third box's index while it runs.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { copyFile, mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { expect, it } from 'vitest'
import type { BuildsResult, PeerInfo, StatusResult } from '@distswarm/agent'
import { portageRead, writeGpkg, writePackages } from '@distswarm/binpkg/testing'
import { alterInPlace, cli, cliJson, localNet, tempDir, waitFor, type AgentProc } from '../harness.js'

const CHOST = 'x86_64-pc-linux-gnu'
const MARIADB = 'dev-db/mariadb-11.4.5'
/** Five agents start at once on a loaded machine. */
const READY_MS = 90_000
const hash = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex')

/** Portage's default FETCHCOMMAND, split as Portage splits it and run without a shell. */
async function wget (uri: string, distdir: string, file: string): Promise<{ code: number | null, stderr: string }> {
  const child = spawn('wget', ['-t', '3', '-T', '60', '--passive-ftp', '-O', join(distdir, file), uri], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stderr }
}

/** GET /binpkgs/Packages of an agent, read by Portage's rules. */
async function packagesOf (box: AgentProc): Promise<ReturnType<typeof portageRead>> {
  const status = await cliJson<StatusResult>(['status', '--control', box.control])
  const r = await fetch(`${status.url!}/binpkgs/Packages`)
  if (r.status !== 200) throw new Error(`Packages: ${r.status} ${await r.text()}`)
  return portageRead(await r.text())
}

it('three agents: two builders of mariadb with other USE, one binhost listing both, wget downloads, untrusted absent, a liar caught, a new build seen', { timeout: 400_000 }, async () => {
  const net = await localNet()
  const pkgdir = async (name: string): Promise<string> => join((await net.dirs(name)).dir, 'binpkgs')
  // Several 4 MiB pieces each.
  const full = await writeGpkg(await pkgdir('alpha'), { cpv: MARIADB, buildId: 1, use: 'amd64 elibc_glibc server', payload: 9 * 1024 * 1024 })
  await writePackages(await pkgdir('alpha'), [full.stanza])
  const minimal = await writeGpkg(await pkgdir('beta'), { cpv: MARIADB, buildId: 1, use: 'amd64 elibc_glibc minimal', payload: 9 * 1024 * 1024 + 4096 })
  await writePackages(await pkgdir('beta'), [minimal.stanza])
  const evil = await writeGpkg(await pkgdir('mallory'), { cpv: 'app-misc/evil-1.0', buildId: 1, use: 'amd64' })
  await writePackages(await pkgdir('mallory'), [evil.stanza])
  // The liar has beta's build too (the same file and stanza); its copy changes later.
  const liarDir = await pkgdir('liar')
  await mkdir(dirname(join(liarDir, minimal.path)), { recursive: true })
  await copyFile(join(await pkgdir('beta'), minimal.path), join(liarDir, minimal.path))
  await writePackages(liarDir, [minimal.stanza])

  const builderArgs = async (name: string): Promise<string[]> => ['--pkgdir', await pkgdir(name), '--chost', CHOST]
  const builder = async (name: string): Promise<AgentProc> => net.startAgent({ name, args: await builderArgs(name) }, READY_MS)
  const [alpha, beta, mallory, liar] = await Promise.all([builder('alpha'), builder('beta'), builder('mallory'), builder('liar')])
  const key = async (a: AgentProc): Promise<string> => (await cliJson<StatusResult>(['status', '--control', a.control])).publicKey
  const trusted = [await key(alpha), await key(beta), await key(liar)]
  const gamma = await net.startAgent({ name: 'gamma', args: ['--chost', CHOST, ...trusted.flatMap((k) => ['--binpkg-trust', k])] }, READY_MS)
  const url = (await cliJson<StatusResult>(['status', '--control', gamma.control])).url!
  const holdersOf = async (blake2b: string): Promise<string[]> =>
    (await cliJson<BuildsResult>(['binpkgs', '--control', gamma.control])).builds.find((b) => b.blake2b === blake2b)?.holders.slice().sort() ?? []

  // 1. gamma's binhost lists both builds of mariadb, each with its own USE and PATH; mallory's is not there.
  await waitFor(async () => (await packagesOf(gamma)).packages.length === 2, 30_000, 'both mariadb builds in gamma\'s index')
  const { header, packages } = await packagesOf(gamma)
  expect(header.VERSION).toBe('0')
  expect(Number(header.TIMESTAMP)).toBeGreaterThan(0)
  expect(packages.map((p) => p.CPV)).toEqual([MARIADB, MARIADB])
  expect(packages.map((p) => p.USE).sort()).toEqual(['amd64 elibc_glibc minimal', 'amd64 elibc_glibc server'])
  expect(new Set(packages.map((p) => p.PATH)).size).toBe(2)
  expect(new Set(packages.map((p) => p.BUILD_ID)).size).toBe(2)
  await waitFor(async () => (await cliJson<BuildsResult>(['binpkgs', '--control', gamma.control])).builds.some((b) => b.cpv === 'app-misc/evil-1.0'), 30_000, 'mallory\'s build advertised to gamma')
  const listed = await cliJson<BuildsResult>(['binpkgs', '--control', gamma.control])
  const untrusted = listed.builds.find((b) => b.cpv === 'app-misc/evil-1.0')!
  expect([untrusted.trusted, untrusted.path]).toEqual([false, null])
  expect(untrusted.skipped).toBeTruthy()
  expect((await packagesOf(gamma)).packages.some((p) => p.CPV === 'app-misc/evil-1.0')).toBe(false)
  expect((await fetch(`${url}/binpkgs/app-misc/evil/evil-1.0-1.gpkg.tar`)).status).toBe(404)

  // 2. The liar's copy changes after indexing (same size and times); with beta away it is the only holder: caught, nothing served.
  const minimalStanza = packages.find((p) => p.USE === 'amd64 elibc_glibc minimal')!
  await waitFor(async () => (await holdersOf(minimal.blake2b)).join() === 'beta,liar', 30_000, 'beta and the liar holding the minimal build')
  await alterInPlace(join(liarDir, minimal.path), (d) => { for (let o = 0; o < d.length; o += 1024 * 1024) d[o] = d[o]! ^ 0xff })
  await beta.stop()
  await waitFor(async () => (await holdersOf(minimal.blake2b)).join() === 'liar', 30_000, 'the liar as the only holder')
  const lied = await fetch(`${url}/binpkgs/${minimalStanza.PATH!}`)
  expect(lied.status).toBe(502)
  await lied.text()
  const faultsOf = async (): Promise<Record<string, number>> =>
    Object.fromEntries((await cliJson<PeerInfo[]>(['peers', '--control', gamma.control])).map((p) => [p.name, p.faults]))
  expect((await faultsOf()).liar).toBeGreaterThanOrEqual(1)
  // beta back (its identity kept in its state dir): the honest holder.
  await net.startAgent({ name: 'beta', args: await builderArgs('beta') }, READY_MS)
  await waitFor(async () => (await holdersOf(minimal.blake2b)).includes('beta'), 30_000, 'beta holding its build again')

  // 3. wget as FETCHCOMMAND downloads both: the bytes, SIZE, MD5 and SHA1 of their stanzas.
  const distdir = await tempDir()
  for (const [use, b] of [['amd64 elibc_glibc server', full], ['amd64 elibc_glibc minimal', minimal]] as const) {
    const stanza = packages.find((p) => p.USE === use)!
    const file = `${stanza.PATH!.split('/').pop()!}.__download__`
    const r = await wget(`${url}/binpkgs/${stanza.PATH!}`, distdir, file)
    // On a failure, say why: wget prints only the status; the agent's log has the cause.
    expect(r.code, `${r.stderr}\n--- gamma's log:\n${gamma.log.slice(-40).join('\n')}`).toBe(0)
    const got = await readFile(join(distdir, file))
    expect(hash('blake2b512', got)).toBe(b.blake2b)
    expect([String(got.length), hash('md5', got), hash('sha1', got)]).toEqual([stanza.SIZE, stanza.MD5, stanza.SHA1])
  }
  const faults = await faultsOf()
  expect([faults.alpha, faults.beta]).toEqual([0, 0])

  // 4. A build added to alpha's PKGDIR (Portage rewrites Packages after each build) appears in gamma's index.
  const added = await writeGpkg(await pkgdir('alpha'), { cpv: 'dev-libs/libfoo-2.0', buildId: 1, use: 'amd64' })
  await writePackages(await pkgdir('alpha'), [full.stanza, added.stanza])
  const t0 = Date.now()
  await waitFor(async () => (await packagesOf(gamma)).packages.some((p) => p.CPV === 'dev-libs/libfoo-2.0'), 30_000, 'the new build in gamma\'s index')
  console.log(`binpkgs e2e: a build added at alpha was in gamma's index after ${Date.now() - t0} ms`)
  const one = await cli(['binpkgs', 'dev-libs/libfoo', '--control', gamma.control])
  expect(one.code).toBe(0)
  expect(one.stdout).toContain('dev-libs/libfoo-2.0')
  const status = await cliJson<StatusResult>(['status', '--control', gamma.control])
  expect(status.builds.served).toBe(3)
  expect(status.builds.local).toBeGreaterThanOrEqual(2)
  void mallory
})
