/**
 * Binary packages between real agents in this process, on loopback (static
 * peers, no DHT): one box builds, another that trusts it sees the builds in
 * its binhost index and fetches them (verified, kept, advertised again);
 * untrusted builders and other groups are skipped with their reason; a
 * holder whose copy went bad is caught and routed around.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { portageRead, writeGpkg, writePackages, type WrittenBuild } from '@distswarm/binpkg/testing'
import { ControlClient, type Agent, type PeerInfo } from '../src/index.js'
import { agentConfig, startAgent as start, tempDir, until } from './util.js'

const CHOST = 'x86_64-pc-linux-gnu'

/** Where another agent dials this one. */
const at = (a: Agent): { host: string, port: number } => ({ host: '127.0.0.1', port: a.status().dataPort! })

/** A builder's PKGDIR: the builds, and Packages as Portage writes it. */
async function pkgdir (dir: string, builds: Array<{ cpv: string, buildId: number, use: string, payload?: number }>): Promise<{ pkgdir: string, written: WrittenBuild[] }> {
  const p = join(dir, 'binpkgs')
  await mkdir(p, { recursive: true })
  const written: WrittenBuild[] = []
  for (const b of builds) written.push(await writeGpkg(p, b))
  await writePackages(p, written.map((w) => w.stanza))
  return { pkgdir: p, written }
}

function served (agent: Agent): Array<Record<string, string>> {
  const index = agent.binhost().index()
  if ('unavailable' in index) throw new Error(index.unavailable)
  return portageRead(index.body.toString()).packages
}

describe('binary packages between agents', { timeout: 120_000 }, () => {
  it('a build on one box is in the index of a box that trusts it, fetched verified, kept and advertised again; others skip it with a reason', async () => {
    const dir = await tempDir()
    const { pkgdir: p, written } = await pkgdir(join(dir, 'a'), [
      { cpv: 'dev-db/mariadb-11.4.5', buildId: 1, use: 'server -minimal' },
      { cpv: 'dev-db/mariadb-11.4.5', buildId: 2, use: 'minimal server' }
    ])
    const builder = await start(agentConfig(join(dir, 'a'), { name: 'builder', pkgdirs: [p] }))
    const key = builder.status().publicKey
    const peers = [at(builder)]
    const client = await start(agentConfig(join(dir, 'b'), { name: 'client', chost: CHOST, binpkgTrust: [key], staticPeers: peers }))
    const stranger = await start(agentConfig(join(dir, 'c'), { name: 'stranger', chost: CHOST, staticPeers: peers }))
    const grouped = await start(agentConfig(join(dir, 'd'), { name: 'grouped', chost: CHOST, binpkgGroup: 'zen4', binpkgTrust: 'all-members', staticPeers: peers }))

    const stanzas = await until('both builds in the client\'s index', () => { const s = served(client); return s.length === 2 && s })
    expect(stanzas.map((s) => s.USE).sort()).toEqual(['minimal server', 'server -minimal'])
    for (const s of stanzas) {
      const w = written.find((x) => x.stanza.USE === s.USE)!
      expect(s).toMatchObject({ CPV: w.cpv, SIZE: String(w.size), MD5: w.md5, SHA1: w.sha1, CHOST })
      expect(client.binhost().local(s.PATH!)).toBeUndefined()
      const file = await client.binhost().fetch(s.PATH!)
      const bytes = await readFile(file.path)
      expect(bytes.equals(await readFile(join(p, w.path)))).toBe(true)
      expect(createHash('md5').update(bytes).digest('hex')).toBe(s.MD5)
      expect(createHash('sha1').update(bytes).digest('hex')).toBe(s.SHA1)
      // Kept in the state dir's build cache, never in the Portage read-only cache dir.
      expect(file.path.startsWith(join(client.config.stateDir, 'binpkgs') + '/')).toBe(true)
      expect(client.binhost().local(s.PATH!)).toEqual(file)
    }
    expect(client.builds().builds.map((b) => [b.builderName, b.trusted, b.skipped, b.holders.sort()])).toEqual([
      ['builder', true, null, ['builder', 'this box']],
      ['builder', true, null, ['builder', 'this box']]
    ])
    expect(client.status().builds).toEqual({ local: 2, network: 2, served: 2 })
    // The client advertises what it keeps: the builder sees a second holder.
    await until('the client as a holder at the builder', () => builder.builds().builds.every((b) => b.holders.includes('client')))

    // Untrusted: listed, skipped with the reason, absent from the index, not fetched.
    await until('the builds at the stranger', () => stranger.builds().builds.length === 2)
    expect(stranger.builds().builds.map((b) => b.skipped)).toEqual(['builder not in binpkg-trust', 'builder not in binpkg-trust'])
    expect(served(stranger)).toEqual([])
    await expect(stranger.binhost().fetch(stanzas[0]!.PATH!)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    // Another compatibility group: skipped, whoever is trusted.
    await until('the builds at the grouped box', () => grouped.builds().builds.length === 2)
    expect(grouped.builds().builds.every((b) => b.trusted && /group x86_64-pc-linux-gnu, not zen4/.test(b.skipped ?? ''))).toBe(true)
    expect(served(grouped)).toEqual([])

    // A restart keeps the fetched builds (no download), and advertises them again.
    await client.stop()
    const again = await start(agentConfig(join(dir, 'b'), { name: 'client', chost: CHOST, binpkgTrust: [key], staticPeers: peers }))
    expect(again.status().builds.local).toBe(2)
    for (const s of stanzas) expect(again.binhost().local(s.PATH!)).toBeDefined()
  })

  it('keeps the fetched builds under the cache quota: the least recently used one leaves, and is no longer advertised', async () => {
    const dir = await tempDir()
    const { pkgdir: p, written } = await pkgdir(join(dir, 'a'), [
      { cpv: 'app-misc/one-1', buildId: 1, use: '', payload: 200_000 },
      { cpv: 'app-misc/two-1', buildId: 1, use: '', payload: 200_000 }
    ])
    const builder = await start(agentConfig(join(dir, 'a'), { name: 'builder', pkgdirs: [p] }))
    const client = await start(agentConfig(join(dir, 'b'), {
      name: 'client', chost: CHOST, binpkgTrust: [builder.status().publicKey], staticPeers: [at(builder)],
      // Room for one of the two.
      cacheMaxBytes: Math.max(...written.map((w) => w.size)) + 1000
    }))
    const stanzas = await until('both builds at the client', () => { const s = served(client); return s.length === 2 && s })
    const first = await client.binhost().fetch(stanzas[0]!.PATH!)
    await client.binhost().fetch(stanzas[1]!.PATH!)
    expect(client.binhost().local(stanzas[1]!.PATH!)).toBeDefined()
    expect(client.binhost().local(stanzas[0]!.PATH!)).toBeUndefined()
    expect(client.status().builds.local).toBe(1)
    await until('the builder to see the client hold only the second', () => {
      const held = builder.builds().builds.map((b) => b.holders.includes('client'))
      return held.filter(Boolean).length === 1
    })
    await expect(readFile(first.path)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('a holder whose copy of a build went bad is blamed, and the build comes from the honest one', async () => {
    const dir = await tempDir()
    // 8 MiB and a bit: three pieces, so whichever the liar serves carries a wrong byte.
    const { pkgdir: p, written } = await pkgdir(join(dir, 'a'), [{ cpv: 'www-client/big-1.0', buildId: 1, use: 'x', payload: 8 * 1024 * 1024 + 3 }])
    const builderCfg = agentConfig(join(dir, 'a'), { name: 'builder', pkgdirs: [p] })
    const builder = await start(builderCfg)
    const key = builder.status().publicKey
    const liar = await start(agentConfig(join(dir, 'l'), { name: 'liar', chost: CHOST, binpkgTrust: [key], staticPeers: [at(builder)] }))
    const [path] = await until('the build at the liar', () => { const s = served(liar); return s.length === 1 && [s[0]!.PATH!] })
    const kept = await liar.binhost().fetch(path!)
    await builder.stop()
    // Same size and timestamps, other bytes (one in each 4 MiB piece): nothing on the liar's side notices.
    const ref = `${kept.path}.ref`
    execFileSync('touch', ['-r', kept.path, ref])
    const data = await readFile(kept.path)
    for (let o = 0; o < data.length; o += 4 * 1024 * 1024) data[o] = data[o]! ^ 0xff
    await writeFile(kept.path, data)
    execFileSync('touch', ['-r', ref, kept.path])

    // The box meets the liar first, then the builder again.
    const box = await start(agentConfig(join(dir, 'b'), { name: 'box', chost: CHOST, binpkgTrust: [key], staticPeers: [at(liar)] }))
    await until('the liar\'s build at the box', () => box.builds().builds[0]?.holders.join() === 'liar')
    await start({ ...builderCfg, staticPeers: [at(box)] })
    await until('both holders at the box', () => box.builds().builds[0]?.holders.length === 2)
    const file = await box.binhost().fetch(path!)
    expect((await readFile(file.path)).equals(await readFile(join(p, written[0]!.path)))).toBe(true)
    const control = await ControlClient.connect(box.config.control)
    onTestFinished(() => control.close())
    const faults = Object.fromEntries((await control.call('peers', {}) as PeerInfo[]).map((x) => [x.name, x.faults]))
    expect(faults).toEqual({ liar: 1, builder: 0 })
  })
})
