#!/usr/bin/env node
// 5. Discovery on the local testnet (a bootstrap node, hyperswarm DHT): from
// an agent's start to its first authenticated peer, and from a file
// appearing in a seeder's DISTDIR to `where` on another agent listing it.
// Usage: node bench/discovery.mjs [--quick] [--json FILE]
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { MiB, deadline, logged, main, row, run, startNet, waitFor, writeRandomFile } from './lib.mjs'

export async function bench ({ quick, onCleanup }) {
  const RUNS = quick ? 3 : 5
  const net = await startNet()
  onCleanup(() => net.close())
  try {
    const seeder = await net.startAgent({ name: 'seeder' })
    const m = { node: [], ready: [], peer: [], appear: [] }
    for (let r = 0; r < RUNS; r++) {
      const name = `probe-${r}`
      await net.dirs(name)
      const t0 = Date.now()
      const probe = await net.startAgent({ name })
      await waitFor(() => logged(probe, 'peer.ready') !== null, 20_000, `${name} to meet a peer`, 10)
      m.ready.push((logged(probe, 'agent.ready') - t0) / 1000)
      m.peer.push((logged(probe, 'peer.ready') - t0) / 1000)
      m.node.push((await run(process.execPath, ['-e', '0']))[0])

      // As Portage does: written under a temporary name, then renamed into place.
      const file = `appear-${r}.tar.xz`
      const tmp = join(seeder.distdir, `${file}.__download__`)
      await writeRandomFile(tmp, MiB)
      const c = await probe.client()
      try {
        const t1 = Date.now()
        await rename(tmp, join(seeder.distdir, file))
        await waitFor(async () => (await deadline(c.call('where', { query: file }), 5000, 'where')).remote.length > 0, 20_000, `${name} to see ${file}`, 10)
        m.appear.push((Date.now() - t1) / 1000)
      } finally {
        c.close()
      }
      await probe.stop()
    }
    return {
      id: 'discovery',
      title: '5. Discovery',
      config: { runs: RUNS },
      rows: [
        row('agent start to its first authenticated peer', 's', m.peer, { target: { op: '<', value: 1, text: '< 1 s' } }),
        row('  agent start to agent.ready (process start, index, DHT join)', 's', m.ready),
        row('  for scale: node start-up alone (`node -e 0`)', 's', m.node),
        row('file renamed into the seeder\'s DISTDIR to `where` on another agent listing it', 's', m.appear, { target: { op: '<', value: 3, text: '< 3 s' } })
      ],
      notes: [
        `${RUNS} runs on one local testnet (bootstrap node and a seeding agent, running throughout); each run starts a new agent with an empty distdir, stopped at the end of its run.`,
        'Start is when the bench spawns the agent process (node start-up included); the peer time is the `peer.ready` line of the agent\'s own log.',
        'The file (1 MiB) is written as NAME.__download__ in the seeder\'s DISTDIR and renamed, as Portage does; `where` is polled every 10 ms over one control connection (the store waits 500 ms for a name to settle after its last fs event).'
      ]
    }
  } finally {
    await net.close()
  }
}

await main(import.meta.url, bench)
