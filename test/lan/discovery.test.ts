import { describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cli, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'
import { fetchVia, LAB, lab, SLOW, newNetworkKey, skipped } from './lab.js'

describe.skipIf(!LAB.ok)(`zero-config LAN discovery${skipped(LAB.reason)}`, () => {
  it('init --join KEY alone: boxes find each other by multicast, and a file on one is fetched by another; another network is ignored', { timeout: SLOW }, async () => {
    const l = await lab(['buildhost', 'laptop', 'nas', 'stranger'])
    const key = newNetworkKey()
    const f = distfile('zero-config-1.0.tar.gz')
    await writeFile(join((await l.dirs('buildhost')).distdir, f.name), f.data)
    // No bootstrap, no --peer: init --join KEY and the box's own dirs, nothing else.
    const agents = []
    for (const name of ['buildhost', 'laptop', 'nas']) {
      const d = await l.dirs(name)
      const config = join(d.dir, 'distswarm.toml')
      const init = await l.cli(name, ['init', '--join', key, '--config', config, '--name', name, '--distdir', d.distdir,
        '--cache-dir', d.cacheDir, '--state-dir', d.stateDir, '--control', d.control])
      expect(init.code, init.stderr).toBe(0)
      expect(init.stdout).not.toMatch(/--bootstrap|--peer/)
      agents.push(l.startAgentWith(name, ['agent', '--config', config], d))
    }
    const [buildhost, laptop, nas] = await Promise.all(agents)
    const stranger = await l.startAgent('stranger', { networkKey: newNetworkKey() })
    const started = Date.now()
    // Every box of the network meets the two others; none meets the stranger, nor it them.
    await waitFor(async () => (await Promise.all([buildhost!, laptop!, nas!].map(async (a) => (await a.status()).peers))).every((n) => n === 2), 20_000, 'a full mesh by LAN discovery')
    expect((await stranger.status()).peers).toBe(0)
    process.stderr.write(`LAN discovery: full mesh of 3 ${Date.now() - started} ms after the last agent answered\n`)

    const got = await fetchVia(laptop!.control, f.name)
    expect(got.source).toBe('swarm')
    expect((await readFile(got.path)).equals(f.data)).toBe(true)
    const peers = JSON.parse((await cli(['peers', '--control', nas!.control, '--json'])).stdout) as Array<{ name: string, address: string | null }>
    expect(peers.map((p) => p.name).sort()).toEqual(['buildhost', 'laptop'])
    expect((await stranger.status()).peers).toBe(0)
  })
})
