/**
 * A peer whose bytes fail verification three times is banned: dropped at
 * once and refused for ten minutes (the ban book itself:
 * packages/agent/test/penalties.test.ts).
 */
import { expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

type Outcome = { ok: true, result: FetchResult } | { ok: false, error: { code: string } }

it('bans a peer after its third verification fault (ERR_BANNED): disconnected, counted, logged as a warning', async () => {
  const net = await localNet()
  const files = ['one', 'two', 'three'].map((n) => distfile(`lies-${n}-1.0.tar.gz`))
  const { distdir } = await net.dirs('liar')
  for (const f of files) await writeFile(join(distdir, f.name), f.data)
  const [liar, box] = await Promise.all([net.startAgent({ name: 'liar' }), net.startAgent({ name: 'box', args: ['--metrics', '127.0.0.1:0'] })])
  const held = async (): Promise<number> => {
    let n = 0
    for (const f of files) {
      const r = await cli(['where', f.name, '--control', box.control, '--json'])
      if (r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 1) n++
    }
    return n
  }
  await waitFor(async () => await held() === files.length, 30_000, 'the liar\'s three files at box')
  // Same size and timestamps, other bytes: the liar still offers them under their old digests.
  for (const f of files) await alterInPlace(join(liar.distdir, f.name), (d) => { d[0] = d[0]! ^ 0xff })

  const faults = async (): Promise<number | undefined> =>
    (await cliJson<PeerInfo[]>(['peers', '--control', box.control])).find((p) => p.name === 'liar')?.faults
  for (const [i, f] of files.entries()) {
    const r = await cli(['fetch', f.name, '--control', box.control, '--json'])
    expect(r.code).toBe(1)
    const [outcome] = JSON.parse(r.stdout) as Outcome[]
    expect(outcome).toMatchObject({ ok: false, error: { code: 'ERR_VERIFY_FAILED' } })
    // Two faults leave the peer connected; the third drops it.
    if (i < files.length - 1) expect(await faults()).toBe(i + 1)
  }
  await waitFor(async () => await faults() === undefined, 10_000, 'box to drop the liar')

  const warnings = box.log.filter((l) => / warn +distswarm:agent:fetch /.test(l))
  expect(warnings.filter((l) => l.includes(' peer.fault '))).toHaveLength(3)
  const bans = warnings.filter((l) => l.includes(' peer.banned '))
  expect(bans).toHaveLength(1)
  expect(bans[0]).toContain('code=ERR_BANNED')
  expect(bans[0]).toContain('faults=3')
  const { metricsAddress } = await box.status()
  const text = await (await fetch(`http://${metricsAddress!}/metrics`)).text()
  expect(text).toMatch(/^distswarm_peer_faults_total 3$/m)
  expect(text).toMatch(/^distswarm_peer_bans_total 1$/m)
  expect(text).toMatch(/^distswarm_verification_failures_total 3$/m)
})
