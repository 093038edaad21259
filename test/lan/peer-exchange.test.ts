import { describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PeerInfo } from '@distswarm/agent'
import { cli, cliJson, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'
import { fetchVia, LAB, lab, SLOW, newNetworkKey, skipped } from './lab.js'

describe.skipIf(!LAB.ok)(`peer exchange${skipped(LAB.reason)}`, () => {
  it('with --peer buildhost:PORT only (no DHT, no LAN discovery), laptop and nas meet each other and share files; the build host can go', { timeout: SLOW }, async () => {
    const l = await lab(['buildhost', 'laptop', 'nas'])
    const key = newNetworkKey()
    const f = distfile('on-laptop-1.0.tar.gz')
    await writeFile(join((await l.dirs('laptop')).distdir, f.name), f.data)
    const off = ['--lan-discovery', 'off']
    const buildhost = await l.startAgent('buildhost', { networkKey: key, args: ['--data-port', '49738', ...off] })
    const [laptop, nas] = await Promise.all(['laptop', 'nas'].map((name) =>
      l.startAgent(name, { networkKey: key, args: ['--peer', '10.77.0.10:49738', ...off] })))
    await waitFor(async () => (await laptop!.status()).peers === 2 && (await nas!.status()).peers === 2, 30_000, 'laptop and nas to meet through the build host')
    const atNas = await cliJson<PeerInfo[]>(['peers', '--control', nas!.control])
    expect(atNas.map((p) => p.name).sort()).toEqual(['buildhost', 'laptop'])
    expect(atNas.find((p) => p.name === 'laptop')!.address).toMatch(/^10\.77\.0\.11:/)
    // TCP connections, no UDX to measure them: the round-trip time comes from pings (issue 15, item 7)
    expect(atNas.every((p) => p.path === 'tcp')).toBe(true)
    await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--control', nas!.control])).every((p) => typeof p.rttMs === 'number' && typeof p.clockOffsetMs === 'number'), 15_000, 'round-trip times to both')
    const table = await cli(['peers', '--control', nas!.control])
    expect(table.stdout).not.toMatch(/^(buildhost|laptop) .* - +0 /m)

    // The box everyone knew leaves: the others keep each other, and the file on laptop reaches nas.
    await buildhost.stop()
    await waitFor(async () => (await nas!.status()).peers === 1, 30_000, 'nas to drop the build host')
    const got = await fetchVia(nas!.control, f.name)
    expect(got.source).toBe('swarm')
    expect((await readFile(got.path)).equals(f.data)).toBe(true)
  })
})
