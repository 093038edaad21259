#!/usr/bin/env node
// 11. Swarming in the LAN lab: one seeder and 8 boxes on 100 Mbit/s links,
// one 128 MiB file wanted by all 8 at once (the boxes relay the verified
// pieces they have to each other), against the same 8 fetching it one after
// another from the seeder alone, in the same run; the bytes the seeder sent;
// and the time against the ideal (the file's size over one link's rate).
// Skipped, with the reason, where the lab cannot run (not root, no `ip`).
// Usage: node bench/swarming.mjs [--quick] [--json FILE]
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { LanLab } from '@distswarm/localnet'
import { MiB, forgetFile, oneAfterAnother, swarmFetch, bin, call, cpuOf, main, row, speedup, syncFs, timed, waitFor, writeRandomFile } from './lib.mjs'

const RATE = '100mbit'
const LINK_BYTES_S = 100e6 / 8

export async function bench ({ quick, onCleanup }) {
  const base = { id: 'swarming', title: '12. Swarming in the LAN lab (100 Mbit/s)', config: {} }
  const can = LanLab.available()
  if (!can.ok) return { ...base, rows: [], notes: [`skipped: ${can.reason}`] }
  const BOXES = quick ? 4 : 8
  const RUNS = quick ? 1 : 2
  const size = (quick ? 64 : 128) * MiB
  const name = `swarm-${size / MiB}m.tar.xz`
  const names = Array.from({ length: BOXES }, (_, i) => `box${i + 1}`)
  const lab = await LanLab.create({ bin, boxes: [{ name: 'seeder', shape: { rate: RATE } }, ...names.map((n) => ({ name: n, shape: { rate: RATE } }))] })
  onCleanup(() => lab.close())
  try {
    const key = randomBytes(32).toString('hex')
    await writeRandomFile(join((await lab.dirs('seeder')).distdir, name), size)
    await syncFs(lab.root)
    const seeder = await lab.startAgent('seeder', { networkKey: key, args: ['--seed'] })
    const boxes = await Promise.all(names.map((n) => lab.startAgent(n, { networkKey: key })))
    await waitFor(async () => (await Promise.all(boxes.map(async (b) => (await call(b, 'status')).peers))).every((n) => n === BOXES), 120_000, 'a full mesh')
    const fetch = (b) => swarmFetch(b, name, size)
    // Boxes back to holding nothing, each seeing the seeder alone.
    const forget = (some) => forgetFile(some, boxes, name, 120_000)
    const served = async () => (await call(seeder, 'status')).traffic.servedToPeers
    await forget(boxes)
    const m = { seq: [], par: [], seedSent: [], relayed: [], cpu: [], load: [] }
    for (let r = 0; r < RUNS; r++) {
      m.seq.push(await oneAfterAnother(boxes, fetch, forget))

      const before = { seed: await served(), relayed: await Promise.all(boxes.map(async (b) => (await call(b, 'status')).traffic.relayedToPeers ?? 0)) }
      const cpu0 = [seeder, ...boxes].map((a) => cpuOf(a.child.pid))
      const [wall] = await timed(() => Promise.all(boxes.map(fetch)))
      m.load.push(loadavg()[0])
      m.cpu.push([seeder, ...boxes].reduce((n, a, i) => n + cpuOf(a.child.pid) - cpu0[i], 0))
      m.par.push(wall)
      m.seedSent.push((await served() - before.seed) / MiB)
      const relayed = await Promise.all(boxes.map(async (b) => (await call(b, 'status')).traffic.relayedToPeers ?? 0))
      m.relayed.push(relayed.reduce((n, x, i) => n + x - before.relayed[i], 0) / MiB)
      await forget(boxes)
    }
    const ideal = size / LINK_BYTES_S
    return {
      ...base,
      config: { boxes: BOXES, bytes: size, runs: RUNS, rate: RATE },
      rows: [
        row(`${BOXES} boxes fetch ${size / MiB} MiB at once from 1 seeder, relaying pieces: wall until the last has it`, 's', m.par, {
          ratio: { ...speedup(m.seq, m.par, 'one after another'), target: { op: '>=', value: 4, text: '≤ 1/4 of one after another' } }
        }),
        row(`baseline: the ${BOXES} fetching one after another from the seeder alone: sum of walls`, 's', m.seq),
        row('bytes the seeder sent during the concurrent fetch (its status, file bytes)', 'MiB', m.seedSent, {
          target: { op: '<=', value: 2 * size / MiB, text: `≤ 2× the file (${2 * size / MiB} MiB)` }
        }),
        row('  bytes the boxes relayed to each other from downloads under way (together)', 'MiB', m.relayed),
        row(`  the ideal: the file over one ${RATE} link`, 's', [ideal]),
        row('  concurrent wall / ideal', '×', m.par.map((w) => w / ideal)),
        row('  CPU of the seeder and the boxes together over the concurrent fetch', 's CPU', m.cpu),
        row('  1-minute load average at the end of the concurrent fetch', '', m.load)
      ],
      notes: [
        `The LAN lab: the seeder (--seed) and ${BOXES} boxes, every link shaped to ${RATE} both ways with tbf. ${RUNS} run(s), each first the one-after-another baseline (each box deletes its copy after its fetch, and every box waits to see the seeder alone), then all ${BOXES} at once.`,
        'The seeder\'s bytes are its status counter traffic.servedToPeers (file bytes in Data messages) before and after; the relayed bytes the boxes\' traffic.relayedToPeers.',
        'Every agent runs on this one machine: with 2 cores shared by several sessions the lab is CPU-bound long before the links are full; see the CPU and load rows.',
        quick ? `Quick run: ${BOXES} boxes and ${size / MiB} MiB instead of 8 and 128 MiB.` : ''
      ].filter(Boolean)
    }
  } finally {
    await lab.close()
  }
}

await main(import.meta.url, bench)
