/**
 * Binary packages at the agent: its PKGDIRs indexed (hashed in the store's
 * pool, kept across restarts), the binhost's merged index and files, the
 * builds() listing with CHOST, group and trust, and the control request.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { portageRead, writeGpkg, writePackages, type WrittenBuild } from '@distswarm/binpkg/testing'
import type { Logger } from '@distswarm/protocol'
import { Agent, ControlClient, type AgentConfig } from '../src/index.js'
import { agentConfig as config, startAgent as started, tempDir, until } from './util.js'

const CHOST = 'x86_64-pc-linux-gnu'

/** A PKGDIR with two builds of one CPV (USE differs), Packages as Portage writes it. */
async function pkgdir (dir: string): Promise<{ pkgdir: string, builds: WrittenBuild[] }> {
  const pkgdir = join(dir, 'binpkgs')
  await mkdir(pkgdir)
  const a = await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 1, use: 'server -minimal' })
  const b = await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 2, use: 'minimal server' })
  await writePackages(pkgdir, [a.stanza, b.stanza])
  return { pkgdir, builds: [a, b] }
}

describe('binary packages at the agent', { timeout: 60_000 }, () => {
  it("serves its own PKGDIR's builds: a valid merged index with both instances, their files, builds() and status", async () => {
    const dir = await tempDir()
    const { pkgdir: p, builds } = await pkgdir(dir)
    const agent = await started(config(dir, { pkgdirs: [p] }))
    const index = agent.binhost().index()
    if ('unavailable' in index) throw new Error(index.unavailable)
    const doc = portageRead(index.body.toString())
    expect(doc.header).toMatchObject({ VERSION: '0', CHOST, TIMESTAMP: String(index.timestamp) })
    expect(doc.packages.map((s) => s.USE).sort()).toEqual(['minimal server', 'server -minimal'])
    const paths = doc.packages.map((s) => s.PATH!)
    expect(new Set(paths).size).toBe(2)
    for (const stanza of doc.packages) {
      const built = builds.find((b) => b.stanza.USE === stanza.USE)!
      expect(stanza).toMatchObject({ CPV: built.cpv, SIZE: String(built.size), MD5: built.md5, SHA1: built.sha1 })
      const file = agent.binhost().local(stanza.PATH!)
      expect(file).toMatchObject({ size: built.size, blake2b: built.blake2b, path: join(p, built.path) })
      expect(file!.name).toBe(stanza.PATH!.split('/').pop())
      await expect(agent.binhost().fetch(stanza.PATH!)).resolves.toEqual(file)
    }
    expect(agent.binhost().local('dev-db/mariadb/nothing-1.gpkg.tar')).toBeUndefined()
    await expect(agent.binhost().fetch('dev-db/mariadb/nothing-1.gpkg.tar')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })

    const listed = agent.builds('dev-db/mariadb')
    expect(listed).toMatchObject({ chost: CHOST, group: CHOST, unavailable: null })
    expect(listed.builds).toHaveLength(2)
    for (const b of listed.builds) {
      expect(b).toMatchObject({ cpv: 'dev-db/mariadb-11.4.5', builder: agent.status().publicKey, builderName: 'box', holders: ['this box'], trusted: true, skipped: null })
      expect(paths).toContain(b.path)
    }
    expect(agent.builds('mariadb').builds).toHaveLength(2)
    expect(agent.builds('=dev-db/mariadb-11.4.5').builds).toHaveLength(2)
    expect(agent.builds('dev-db/mysql').builds).toHaveLength(0)
    expect(agent.status().builds).toEqual({ local: 2, network: 0, served: 2 })

    // The same over the control socket, as `distswarm binpkgs --json` asks.
    const client = await ControlClient.connect(agent.config.control)
    onTestFinished(() => client.close())
    expect(await client.call('binpkgs', { atom: 'mariadb' })).toEqual(agent.builds('mariadb'))
    await expect(client.call('binpkgs', { atom: 'a b' })).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST' })
  })

  it('serves no builds, and says why, when no CHOST is known; a CHOST or group that differs is skipped with its reason', async () => {
    const dir = await tempDir()
    const { pkgdir: p } = await pkgdir(dir)
    // A Packages without a CHOST anywhere, and no --chost: the box cannot tell.
    const bare = join(dir, 'bare')
    await mkdir(bare)
    const c = await writeGpkg(bare, { cpv: 'app-misc/hello-1', buildId: 1, use: '' })
    await writePackages(bare, [c.stanza], { CHOST: '' })
    const blind = await started(config(join(dir, 'a'), { pkgdirs: [bare], control: join(dir, 'a.sock') }))
    const idx = blind.binhost().index()
    expect('unavailable' in idx && idx.unavailable).toMatch(/no CHOST known/)
    expect(blind.builds()).toMatchObject({ chost: null, unavailable: expect.stringMatching(/no CHOST/) })
    expect(blind.builds().builds[0]).toMatchObject({ cpv: 'app-misc/hello-1', path: null, skipped: expect.stringMatching(/no CHOST/) })

    const other = await started(config(join(dir, 'b'), { pkgdirs: [p], chost: 'aarch64-unknown-linux-gnu', control: join(dir, 'b.sock') }))
    expect(other.builds().builds.map((b) => b.skipped)).toEqual([expect.stringMatching(/CHOST x86_64-pc-linux-gnu, not aarch64/), expect.stringMatching(/CHOST x86_64-pc-linux-gnu, not aarch64/)])
    const text = other.binhost().index()
    expect('body' in text && portageRead(text.body.toString()).packages).toEqual([])

    const grouped = await started(config(join(dir, 'c'), { pkgdirs: [p], chost: CHOST, binpkgGroup: 'native-zen4', control: join(dir, 'c.sock') }))
    // Its own builds are advertised in its own group: they stay in.
    expect(grouped.builds().builds.every((b) => b.skipped === null)).toBe(true)
  })

  it('warns that it serves no builds only where binary packages were asked for (a PKGDIR or trusted builders)', async () => {
    const dir = await tempDir()
    const bare = join(dir, 'bare')
    await mkdir(bare)
    const c = await writeGpkg(bare, { cpv: 'app-misc/hello-1', buildId: 1, use: '' })
    await writePackages(bare, [c.stanza], { CHOST: '' })
    const warned = async (name: string, extra: Partial<AgentConfig>): Promise<string[]> => {
      const events: string[] = []
      const nop = (): void => {}
      const logger: Logger = { error: nop, info: nop, debug: nop, warn: (e) => { events.push(e) }, child: () => logger }
      const agent = new Agent(config(join(dir, name), { control: join(dir, `${name}.sock`), ...extra }), { logger })
      onTestFinished(() => agent.stop())
      await agent.start()
      return events
    }
    expect(await warned('asked', { pkgdirs: [bare] })).toContain('binhost.unavailable')
    // No PKGDIR, no trusted builder, no Portage: nothing was asked of the binhost, and the default log stays quiet.
    expect(await warned('quiet', { pkgdirs: [] })).not.toContain('binhost.unavailable')
  })

  it("takes PKGDIR and CHOST from Portage when not given (portageq envvar)", async () => {
    const dir = await tempDir()
    const { pkgdir: p, builds } = await pkgdir(dir)
    // A stand-in portageq on PATH: Portage's view of this box.
    const bin = join(dir, 'bin')
    await mkdir(bin)
    await writeFile(join(bin, 'portageq'), `#!/bin/sh\n[ "$1 $2 $3" = "envvar PKGDIR CHOST" ] || exit 2\necho ${p}\necho riscv64-unknown-linux-gnu\n`, { mode: 0o755 })
    const path = process.env.PATH
    process.env.PATH = `${bin}:${path}`
    onTestFinished(() => { process.env.PATH = path })
    // Its Packages says no CHOST: its builds are taken as the box's, as Portage takes them.
    await writePackages(p, builds.map((b) => b.stanza), { CHOST: '' })
    const agent = await started(config(dir, { pkgdirs: undefined, chost: undefined }))
    expect(agent.builds()).toMatchObject({ chost: 'riscv64-unknown-linux-gnu', group: 'riscv64-unknown-linux-gnu', unavailable: null })
    expect(agent.builds().builds.map((b) => [b.holders, b.skipped])).toEqual([[['this box'], null], [['this box'], null]])
  })

  it('picks up a build Portage adds to the PKGDIR (Packages rewritten by rename)', async () => {
    const dir = await tempDir()
    const { pkgdir: p, builds } = await pkgdir(dir)
    const agent = await started(config(dir, { pkgdirs: [p] }))
    expect(agent.builds().builds).toHaveLength(2)
    const c = await writeGpkg(p, { cpv: 'app-misc/hello-2', buildId: 1, use: 'nls' })
    await writePackages(p, [...builds.map((b) => b.stanza), c.stanza])
    await until('the new build', () => agent.builds('app-misc/hello').builds.length === 1)
    const index = agent.binhost().index()
    expect('body' in index && portageRead(index.body.toString()).packages.map((s) => s.CPV)).toContain('app-misc/hello-2')
  })

  it('does not hash the PKGDIR again after a restart (the digests are kept in the state dir)', async () => {
    const dir = await tempDir()
    const { pkgdir: p, builds } = await pkgdir(dir)
    const cfg = config(dir, { pkgdirs: [p] })
    const target = join(p, builds[0]!.path)
    // Whole seconds: utimes cannot put back a nanosecond mtime exactly.
    const when = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)
    await utimes(target, when, when)
    const first = new Agent(cfg)
    await first.start()
    expect(first.builds().builds.map((b) => b.blake2b).sort()).toEqual(builds.map((b) => b.blake2b).sort())
    await first.stop()
    // Rewrite one file in place, same size, mtime put back: a re-hash would see other bytes (and refuse its MD5).
    const fh = await open(target, 'r+')
    await fh.write(randomBytes(64), 0, 64, builds[0]!.size - 1024)
    await fh.close()
    await utimes(target, when, when)
    const second = await started(cfg)
    expect(second.builds().builds.map((b) => b.blake2b).sort()).toEqual(builds.map((b) => b.blake2b).sort())
    expect(JSON.parse(await readFile(join(cfg.stateDir, 'binpkg-hashes.json'), 'utf8'))).toMatchObject({ version: 1, rows: expect.arrayContaining([expect.arrayContaining([target])]) })
  })
})
