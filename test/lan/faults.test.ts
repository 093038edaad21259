import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LanLab } from '@distswarm/localnet'
import type { PeerInfo, WhereResult } from '@distswarm/agent'
import { cli, cliJson, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'
import { fetchVia, LAB, lab, newNetworkKey, skipped, SLOW } from './lab.js'

const LOSS = LanLab.lossAvailable()

describe.skipIf(!LAB.ok)(`faults in the LAN lab${skipped(LAB.reason)}`, () => {
  it('a link cut mid-transfer with a second holder: the fetch completes from it, with nothing partial visible', { timeout: SLOW }, async () => {
    // Shaped so the transfer lasts seconds: there is a "mid" to cut in.
    const l = await lab([{ name: 'buildhost', shape: { rate: '40mbit' } }, { name: 'laptop' }, { name: 'nas', shape: { rate: '40mbit' } }])
    const key = newNetworkKey()
    const f = distfile('cut-1.0.tar.xz', Buffer.alloc(40 * 1024 * 1024, 0x5a))
    for (const name of ['buildhost', 'nas']) await writeFile(join((await l.dirs(name)).distdir, f.name), f.data)
    const [buildhost, laptop, nas] = await Promise.all(['buildhost', 'laptop', 'nas'].map((name) => l.startAgent(name, { networkKey: key })))
    await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--control', laptop!.control])).filter((p) => p.files === 1).length === 2, 30_000, 'laptop to see both holders')

    const fetching = fetchVia(laptop!.control, f.name)
    await waitFor(async () => (await buildhost!.status()).traffic.servedToPeers >= 2 * 1024 * 1024, 60_000, 'the build host to be serving')
    l.cut('buildhost')
    const cutAt = Date.now()
    const got = await fetching
    process.stderr.write(`link cut: the fetch completed from the second holder ${Date.now() - cutAt} ms after the cut\n`)
    expect((await readFile(got.path)).equals(f.data)).toBe(true)
    expect((await nas!.status()).traffic.servedToPeers).toBeGreaterThan(0)
    // The cache dir holds the whole file and nothing else (partials live under .partial/, never visible to Portage by name).
    expect((await readdir(laptop!.cacheDir)).filter((n) => !n.startsWith('.'))).toEqual([f.name])
  })

  it.skipIf(!LOSS.ok)(`5% packet loss on one link: transfers complete with the right bytes${skipped(LOSS.reason)}`, { timeout: SLOW }, async () => {
    const l = await lab([{ name: 'buildhost' }, { name: 'laptop', shape: { loss: 5 } }])
    const key = newNetworkKey()
    const files = [distfile('lossy-1.0.tar.xz', Buffer.alloc(6 * 1024 * 1024 + 3, 0x33)), distfile('lossy-small-1.0.tar.gz')]
    for (const f of files) await writeFile(join((await l.dirs('buildhost')).distdir, f.name), f.data)
    const [, laptop] = await Promise.all(['buildhost', 'laptop'].map((name) => l.startAgent(name, { networkKey: key })))
    await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--control', laptop!.control]))[0]?.files === 2, 60_000, 'laptop to see the build host over the lossy link')
    for (const f of files) {
      const got = await fetchVia(laptop!.control, f.name)
      expect(got.source).toBe('swarm')
      expect((await readFile(got.path)).equals(f.data)).toBe(true)
    }
  })

  // 30 s: longer than a member's idle limit (15 s, pings unanswered), so both sides drop each other and redial once it is back;
  // 8 s: shorter, so the old TCP connections may survive, in retransmission back-off: the first fetch may meet one and must still succeed.
  for (const seconds of [30, 8]) {
    it(`a box partitioned for ${seconds} s, then healed: it rejoins, the others see what it gained meanwhile, and the first fetch works`, { timeout: SLOW }, async () => {
      const l = await lab(['buildhost', 'laptop', 'nas'])
      const key = newNetworkKey()
      const [buildhost, laptop, nas] = await Promise.all(['buildhost', 'laptop', 'nas'].map((name) => l.startAgent(name, { networkKey: key })))
      await waitFor(async () => (await Promise.all([buildhost!, laptop!, nas!].map(async (a) => (await a.status()).peers))).every((n) => n === 2), 30_000, 'a full mesh')
      l.cut('nas')
      const f = distfile(`while-apart-${seconds}.tar.gz`)
      await writeFile(join(nas!.distdir, f.name), f.data)
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
      l.heal('nas')
      const healedAt = Date.now()
      // where exits 1 while no peer holds the file: none yet, while nas's inventory is on its way.
      const holders = async (a: typeof laptop): Promise<number> => {
        const r = await cli(['where', f.name, '--control', a!.control, '--json'])
        if (r.code === 1) return 0
        if (r.code !== 0) throw new Error(`distswarm where exited ${r.code}: ${r.stderr}`)
        return (JSON.parse(r.stdout) as WhereResult).remote.length
      }
      await waitFor(async () => (await holders(laptop)) === 1 && (await holders(buildhost)) === 1 && (await nas!.status()).peers === 2, 60_000, 'nas back, with its new file seen by the others')
      process.stderr.write(`partition ${seconds} s: nas rejoined with its inventory current ${Date.now() - healedAt} ms after the heal\n`)
      const fetchedAt = Date.now()
      const got = await fetchVia(laptop!.control, f.name)
      expect(got.source).toBe('swarm')
      process.stderr.write(`partition ${seconds} s: the first fetch after it took ${Date.now() - fetchedAt} ms\n`)
      expect(createHash('sha512').update(await readFile(join(laptop!.cacheDir, f.name))).digest('hex')).toBe(f.sha512)
    })
  }

  it('an agent kill -9ed: the others drop it, and keep each other', { timeout: SLOW }, async () => {
    const l = await lab(['buildhost', 'laptop', 'nas'])
    const key = newNetworkKey()
    const [buildhost, laptop, nas] = await Promise.all(['buildhost', 'laptop', 'nas'].map((name) => l.startAgent(name, { networkKey: key })))
    await waitFor(async () => (await Promise.all([buildhost!, laptop!, nas!].map(async (a) => (await a.status()).peers))).every((n) => n === 2), 30_000, 'a full mesh')
    nas!.child.kill('SIGKILL')
    const killedAt = Date.now()
    for (const a of [buildhost!, laptop!]) {
      await waitFor(async () => (await a.status()).peers === 1, 30_000, `${a.name} to drop nas`)
      process.stderr.write(`kill -9: ${a.name} dropped nas within ${Date.now() - killedAt} ms\n`)
      expect((await cliJson<PeerInfo[]>(['peers', '--control', a.control])).map((p) => p.name)).toEqual([a === buildhost ? 'laptop' : 'buildhost'])
    }
  })
})
