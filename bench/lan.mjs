#!/usr/bin/env node
// 8. The LAN lab: two boxes (network namespaces) on 100 Mbit/s links. A
// verified fetch from one box to the other against curl of the same file
// from a plain HTTP server over the same shaped link, run for run; and
// discovery by LAN multicast alone (no bootstrap node, no --peer).
// Skipped, with the reason, where the lab cannot run (not root, no `ip`).
// Usage: node bench/lan.mjs [--quick] [--json FILE]
import { randomBytes } from 'node:crypto'
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { LanLab } from '@distswarm/localnet'
import { MiB, bin, call, logged, main, now, row, syncFs, timed, waitFor, waitHolders, waitLocal, writeRandomFile } from './lib.mjs'

const RATE = '100mbit'
const LINK_MIB_S = 100e6 / 8 / MiB
const HTTP_PORT = 8080

export async function bench ({ quick, onCleanup }) {
  const base = { id: 'lan', title: '8. LAN lab (100 Mbit/s)', config: {} }
  const can = LanLab.available()
  if (!can.ok) return { ...base, rows: [], notes: [`skipped: ${can.reason}`] }
  const RUNS = quick ? 2 : 3
  const size = (quick ? 64 : 256) * MiB
  const name = `lan-${size / MiB}m.tar.xz`
  const lab = await LanLab.create({ bin, boxes: [{ name: 'buildhost', shape: { rate: RATE } }, { name: 'laptop', shape: { rate: RATE } }] })
  onCleanup(() => lab.close())
  try {
    const key = randomBytes(32).toString('hex')
    const bh = await lab.dirs('buildhost')
    const source = join(bh.distdir, name)
    await writeRandomFile(source, size)
    await syncFs(lab.root)
    const buildhost = await lab.startAgent('buildhost', { networkKey: key })

    // Discovery by multicast alone: from spawning laptop's agent to its first authenticated peer.
    const t0 = Date.now()
    const laptop = await lab.startAgent('laptop', { networkKey: key })
    await waitFor(async () => (await laptop.status()).peers === 1, 30_000, 'laptop to find the build host', 10)
    const discovery = { start: (Date.now() - t0) / 1000, ready: (logged(laptop, 'peer.ready') - logged(laptop, 'agent.ready')) / 1000 }
    await waitHolders(laptop, name, ['buildhost'])

    const server = lab.spawnIn('buildhost', 'http', [process.execPath, '-e', `
      const fs = require('node:fs')
      require('node:http').createServer((req, res) => {
        res.writeHead(200, { 'content-length': ${size} })
        fs.createReadStream(${JSON.stringify(source)}).pipe(res)
      }).listen(${HTTP_PORT}, '10.77.0.10', () => console.error('listening'))`])
    await waitFor(() => server.log.includes('listening'), 15_000, 'the HTTP server')
    const out = join((await lab.dirs('laptop')).dir, 'curl-download')
    const cached = join(laptop.cacheDir, name)
    const m = { ours: [], theirs: [] }
    for (let i = 0; i < RUNS; i++) {
      await rm(cached, { force: true })
      await waitLocal(laptop, name, false)
      const [wall, got] = await timed(() => call(laptop, 'fetch', { query: name }, 600_000))
      if (got.source !== 'swarm' || (await stat(cached)).size !== size) throw new Error(`fetch gave ${JSON.stringify(got)}`)
      m.ours.push(size / MiB / wall)

      await rm(out, { force: true })
      const t = now()
      const curl = await lab.exec('laptop', ['curl', '-sf', '--noproxy', '*', '-o', out, `http://10.77.0.10:${HTTP_PORT}/${name}`], { timeoutMs: 600_000 })
      if (curl.code !== 0 || (await stat(out)).size !== size) throw new Error(`curl exited ${curl.code}: ${curl.stderr}`)
      m.theirs.push(size / MiB / (now() - t))
    }
    const ratio = m.ours.map((o, i) => o / m.theirs[i])
    return {
      ...base,
      config: { runs: RUNS, sizeMiB: size / MiB, rate: RATE },
      rows: [
        row(`fetch of ${size / MiB} MiB, verified and published, box to box`, 'MiB/s', m.ours, {
          ratio: { samples: ratio, of: 'curl over the same link', target: { op: '>=', value: 0.9, text: '≥ 0.9× curl' } }
        }),
        row('  curl of the same file from a plain HTTP server, same link', 'MiB/s', m.theirs),
        row('  the link\'s rate, for scale', 'MiB/s', [LINK_MIB_S]),
        row('discovery by LAN multicast alone: agent.ready to its first peer (log times)', 's', [discovery.ready], { target: { op: '<', value: 2, text: '< 2 s' } }),
        row('  agent process spawned to its first peer (node start-up included)', 's', [discovery.start])
      ],
      notes: [
        `Two boxes of the LAN lab (network namespaces on a bridge), each link shaped to ${RATE} both ways with tbf; ${RUNS} runs, interleaved.`,
        'distswarm: `fetch` on the receiving agent (the file hashed with BLAKE2B and SHA512 and published); curl: a node HTTP server in the sending box, curl -o in the receiving one, no hashing.',
        'Discovery: the receiving agent started with no bootstrap node and no --peer (LAN discovery is on by default), the sending one running already.'
      ]
    }
  } finally {
    await lab.close()
  }
}

await main(import.meta.url, bench)
