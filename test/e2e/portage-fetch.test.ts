import { describe, expect, it } from 'vitest'
import { readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, localNet, waitFor } from '../harness.js'
import { digestsOf, distfile, emergeFetch, makeConf, mirror, portageArgv, spawnLikePortage } from '../gentoo.js'

const tempNames = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('.distswarm-'))

describe('portage-fetch, run exactly as Portage runs FETCHCOMMAND', () => {
  it('takes the file from a peer, else falls back to the mirror, and never places a wrong file', async () => {
    const net = await localNet()
    const hit = distfile('hit-1.0.tar.gz')
    const miss = distfile('miss-2.0.tar.gz')
    const liar = distfile('liar-3.0.tar.gz')
    const wanted = distfile('renamed-4.0.tar.gz') // what the Manifest says
    const impostor = distfile('renamed-4.0.tar.gz') // same name on the peer, other content
    const up = await mirror([hit, miss, liar, wanted])

    const seed = await net.dirs('seeder')
    for (const f of [hit, liar, impostor]) await writeFile(join(seed.distdir, f.name), f.data)
    const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box' })])
    await waitFor(async () => (await box.status()).peers === 1, 30_000, 'box to meet the seeder')
    await waitFor(async () => {
      const r = await cli(['where', hit.name, '--control', box.control, '--json'])
      return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 1
    }, 30_000, 'the seeder\'s inventory at box')

    // The seeder's copy of liar changes after it was indexed; same size, same timestamps: it will serve wrong bytes.
    await alterInPlace(join(seed.distdir, liar.name), (d) => { d[1000] = d[1000]! ^ 0xff })

    const conf = await makeConf(box.control)

    // 1. hit: from the swarm, the mirror never asked
    const a = await emergeFetch(conf, box.distdir, hit, up.url(hit.name))
    expect(a.code, a.stderr).toBe(0)
    expect(a.placed?.equals(hit.data)).toBe(true)
    expect(up.requests.get(hit.name)).toBeUndefined()
    expect(a.stderr).toMatch(/from the swarm/)
    expect((await readFile(join(box.cacheDir, hit.name))).equals(hit.data)).toBe(true)

    // 2. no peer has it: Portage's own wget line against the mirror
    const b = await emergeFetch(conf, box.distdir, miss, up.url(miss.name))
    expect(b.code, b.stderr).toBe(0)
    expect(b.placed?.equals(miss.data)).toBe(true)
    expect(up.requests.get(miss.name)).toBe(1)
    // the miss is told by the name Portage asked for, not by the digest the agent was asked by
    expect(b.stderr).toContain(`${miss.name}: not from the swarm (no peer has it); normal download`)
    expect(b.stderr).not.toMatch(/[0-9a-f]{128}/)
    // Portage verifies it and renames it into place; box's agent picks it up and shares it from then on.
    await rename(join(box.distdir, `${miss.name}.__download__`), join(box.distdir, miss.name))
    await waitFor(async () => {
      const r = await cli(['where', miss.name, '--control', seeder.control, '--json'])
      return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.some((f) => f.holders.some((h) => h.name === 'box'))
    }, 15_000, 'the seeder to see box holding the file that came through the fallback')

    // 3. the only peer serves wrong bytes: rejected, nothing in the cache, the mirror's bytes at the destination
    const c = await emergeFetch(conf, box.distdir, liar, up.url(liar.name))
    expect(c.code, c.stderr).toBe(0)
    expect(c.placed?.equals(liar.data)).toBe(true)
    expect(up.requests.get(liar.name)).toBe(1)
    expect(c.stderr).toMatch(/not from the swarm .*(BLAKE2B|digest)/)
    expect(await readdir(box.cacheDir)).not.toContain(liar.name)
    expect(await readdir(join(box.cacheDir, '.partial'))).toEqual([])

    // 4. a peer has the name but other content: the digest wins
    const d = await emergeFetch(conf, box.distdir, wanted, up.url(wanted.name))
    expect(d.code, d.stderr).toBe(0)
    expect(d.placed?.equals(wanted.data)).toBe(true)
    expect(up.requests.get(wanted.name)).toBe(1)

    // 5. the agent is down: plain fallback, same result as without distswarm
    const downConf = await makeConf(join(net.root, 'nobody.sock'))
    const e = await emergeFetch(downConf, box.distdir, miss, up.url(miss.name))
    expect(e.code, e.stderr).toBe(0)
    expect(e.placed?.equals(miss.data)).toBe(true)
    expect(e.stderr).toMatch(/no agent answers/)

    // 6. the fallback fails too (404): its status is ours
    const nowhere = distfile('nowhere-9.tar.gz')
    const f = await emergeFetch(conf, box.distdir, nowhere, up.url(nowhere.name))
    expect(f.code).toBe(8) // wget: server error response

    expect(await tempNames(box.distdir)).toEqual([])
  })

  it('RESUMECOMMAND replaces a partial download with the whole verified file', async () => {
    const net = await localNet()
    const big = distfile('resume-5.tar.xz', Buffer.alloc(3 * 1024 * 1024, 7))
    const seed = await net.dirs('seeder')
    await writeFile(join(seed.distdir, big.name), big.data)
    const [, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box' })])
    await waitFor(async () => (await cli(['where', big.name, '--control', box.control])).code === 0, 30_000, 'inventory at box')
    const file = `${big.name}.__download__`
    await writeFile(join(box.distdir, file), big.data.subarray(0, 1000)) // what an interrupted wget left
    const argv = portageArgv(await makeConf(box.control), 'RESUMECOMMAND', { URI: 'http://127.0.0.1:1/x', DISTDIR: box.distdir, FILE: file, DIGESTS: digestsOf(big) })
    expect(argv).toContain('--resume')
    const r = await spawnLikePortage(argv)
    expect(r.code, r.stderr).toBe(0)
    expect((await readFile(join(box.distdir, file))).equals(big.data)).toBe(true)
  })
})
