// Issue 16 in the LAN lab: one seeder and four boxes on shaped links fetch
// one 64 MiB file at once; the boxes serve each other the verified pieces
// they have (PieceMap, then Requests to partial holders), so the seeder
// sends far less than once per box, and a box killed mid-transfer leaves the
// others to finish.
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { open, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AgentProc } from '@distswarm/localnet'
import type { PeerInfo, WhereResult } from '@distswarm/agent'
import { cliJson, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'
import { fetchVia, LAB, lab, newNetworkKey, skipped, SLOW } from './lab.js'

const MiB = 1024 * 1024
const RATE = '100mbit'
const BOXES = ['box1', 'box2', 'box3', 'box4']

/** A seeder (--seed) holding one 64 MiB file and four boxes, every link at RATE (the seeder's at `seederRate`), each box seeing the seeder's file. */
async function swarm (name: string, seederRate = RATE): Promise<{ seeder: AgentProc, boxes: AgentProc[], data: Buffer }> {
  const l = await lab([{ name: 'seeder', shape: { rate: seederRate } }, ...BOXES.map((b) => ({ name: b, shape: { rate: RATE } }))])
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

  it('a box whose partial file goes bad relays wrong pieces: it is blamed, the others finish, nothing wrong is published anywhere', { timeout: SLOW }, async () => {
    const name = 'swarm-liar-1.0.tar.xz'
    // A slow seeder: the liar is still downloading when the others start.
    const { boxes, data } = await swarm(name, '40mbit')
    const [liar, ...rest] = boxes as [AgentProc, ...AgentProc[]]
    const hex = (await cliJson<WhereResult>(['where', name, '--control', liar.control, '--json'])).remote[0]!.blake2b
    const lying = fetchVia(liar.control, name).catch((err: Error) => err)
    await waitFor(async () => (await liar.status()).transfers.some((t) => t.bytesDone >= 8 * MiB), 60_000, 'the liar to be under way')
    // The others start: the liar, wanted now, checks what it holds and relays it.
    const fetching = rest.map((b) => fetchVia(b.control, name))
    await waitFor(async () => ((await liar.status()).traffic.relayedToPeers ?? 0) > 0, 60_000, 'the liar to relay pieces')
    // Its disk then changes the bytes of the pieces it verified and advertised: it will serve them wrong.
    const partial = await open(join(liar.cacheDir, '.partial', hex), 'r+')
    try {
      const { size } = await partial.stat()
      const junk = Buffer.alloc(1024 * 1024, 0xee)
      for (let at = 0; at + junk.length <= size; at += junk.length) await partial.write(junk, 0, junk.length, at)
    } finally {
      await partial.close()
    }
    const results = await Promise.all(fetching)
    for (const [i, r] of results.entries()) {
      expect(r.source).toBe('swarm')
      await holdsWhole(rest[i]!, name, data)
    }
    const faults = await Promise.all(rest.map(async (b) => (await cliJson<PeerInfo[]>(['peers', '--control', b.control, '--json'])).find((p) => p.name === liar.name)?.faults ?? 0))
    process.stderr.write(`swarming: faults of the liar at the other boxes: ${faults.join(', ')}\n`)
    expect(faults.some((n) => n > 0)).toBe(true)
    // The liar's own fetch: whatever came of it, its cache dir holds the right bytes or nothing.
    await lying
    const published = (await readdir(liar.cacheDir)).filter((n) => !n.startsWith('.'))
    for (const n of published) expect((await readFile(join(liar.cacheDir, n))).equals(data)).toBe(true)
  })
})
