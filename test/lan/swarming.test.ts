// Issue 16 in the LAN lab: one seeder and four boxes on shaped links fetch
// one 64 MiB file at once; the boxes serve each other the verified pieces
// they have (PieceMap, then Requests to partial holders), so the seeder
// sends far less than once per box, and a box killed mid-transfer leaves the
// others to finish.
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AgentProc } from '@distswarm/localnet'
import type { WhereResult } from '@distswarm/agent'
import { cliJson, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'
import { fetchVia, LAB, lab, newNetworkKey, skipped, SLOW } from './lab.js'

const MiB = 1024 * 1024
const RATE = '100mbit'
const BOXES = ['box1', 'box2', 'box3', 'box4']

/** A seeder (--seed) holding one 64 MiB file and four boxes, every link at RATE, each box seeing the seeder's file. */
async function swarm (name: string): Promise<{ seeder: AgentProc, boxes: AgentProc[], data: Buffer }> {
  const l = await lab([{ name: 'seeder', shape: { rate: RATE } }, ...BOXES.map((b) => ({ name: b, shape: { rate: RATE } }))])
  const key = newNetworkKey()
  const f = distfile(name, randomBytes(64 * MiB))
  await writeFile(join((await l.dirs('seeder')).distdir, f.name), f.data)
  const seeder = await l.startAgent('seeder', { networkKey: key, args: ['--seed'] })
  const boxes = await Promise.all(BOXES.map((b) => l.startAgent(b, { networkKey: key })))
  await waitFor(async () => (await Promise.all(boxes.map(async (b) => (await cliJson<WhereResult>(['where', f.name, '--control', b.control, '--json'])).remote.length))).every((n) => n === 1), 60_000, 'every box to see the seeder\'s file')
  await waitFor(async () => (await Promise.all(boxes.map(async (b) => (await b.status()).peers))).every((n) => n === BOXES.length), 60_000, 'a full mesh')
  return { seeder, boxes, data: f.data }
}

/** The box's cache dir holds the whole file, verified, and nothing partial by name. */
async function holdsWhole (box: AgentProc, name: string, data: Buffer): Promise<void> {
  expect((await readFile(join(box.cacheDir, name))).equals(data)).toBe(true)
  expect((await readdir(box.cacheDir)).filter((n) => !n.startsWith('.'))).toEqual([name])
}

describe.skipIf(!LAB.ok)(`swarming in the LAN lab${skipped(LAB.reason)}`, () => {
  it('1 seeder, 4 boxes, 64 MiB at once: identical verified bytes everywhere, the seeder sends < 2x the file', { timeout: SLOW }, async () => {
    const name = 'swarm-1.0.tar.xz'
    const { seeder, boxes, data } = await swarm(name)
    const started = Date.now()
    const results = await Promise.all(boxes.map((b) => fetchVia(b.control, name)))
    const wall = Date.now() - started
    for (const [i, r] of results.entries()) {
      expect(r.source).toBe('swarm')
      await holdsWhole(boxes[i]!, name, data)
    }
    const seederSent = (await seeder.status()).traffic.servedToPeers
    const relayed = await Promise.all(boxes.map(async (b) => (await b.status()).traffic.relayedToPeers ?? 0))
    process.stderr.write(`swarming: 4 boxes × 64 MiB at once over ${RATE} in ${wall} ms; the seeder sent ${(seederSent / MiB).toFixed(1)} MiB; relayed by the boxes: ${relayed.map((n) => (n / MiB).toFixed(1)).join(', ')} MiB\n`)
    expect(seederSent).toBeLessThan(2 * data.length)
    expect(relayed.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
  })

  it('a box killed mid-transfer: the other three finish, with identical verified bytes', { timeout: SLOW }, async () => {
    const name = 'swarm-kill-1.0.tar.xz'
    const { seeder, boxes, data } = await swarm(name)
    const [victim, ...rest] = boxes as [AgentProc, ...AgentProc[]]
    const fetching = rest.map((b) => fetchVia(b.control, name))
    const doomed = fetchVia(victim.control, name).catch((err: Error) => err)
    // Mid-transfer: the boxes have pieces and relay them.
    await waitFor(async () => (await victim.status()).transfers.some((t) => t.bytesDone >= 8 * MiB), 60_000, 'the victim to be under way')
    victim.child.kill('SIGKILL')
    const killedAt = Date.now()
    const results = await Promise.all(fetching)
    process.stderr.write(`swarming: a box killed mid-transfer; the other three finished ${Date.now() - killedAt} ms later; the seeder sent ${((await seeder.status()).traffic.servedToPeers / MiB).toFixed(1)} MiB\n`)
    for (const [i, r] of results.entries()) {
      expect(r.source).toBe('swarm')
      await holdsWhole(rest[i]!, name, data)
    }
    expect(await doomed).toBeInstanceOf(Error)
  })
})
