#!/usr/bin/env node
// 4. Fan-out: one seeder and 8 agents fetching the same file at once, against
// the same agents fetching it one after another from the seeder alone, in
// the same net; and who served the bytes (the `peers` counters).
// Usage: node bench/fanout.mjs [--quick] [--json FILE]
import { join } from 'node:path'
import { MiB, forgetFile, oneAfterAnother, swarmFetch, call, main, row, speedup, startNet, syncFs, timed, traffic, writeRandomFile } from './lib.mjs'


export async function bench ({ quick, onCleanup }) {
  const AGENTS = quick ? 4 : 8
  const RUNS = quick ? 2 : 3
  const size = (quick ? 128 : 512) * MiB
  const name = `fanout-${size / MiB}m.tar.xz`
  const net = await startNet()
  onCleanup(() => net.close())
  try {
    await writeRandomFile(join((await net.dirs('seeder')).distdir, name), size)
    await syncFs(net.root)
    const seeder = await net.startAgent({ name: 'seeder', args: ['--seed'] })
    const agents = await Promise.all(Array.from({ length: AGENTS }, (_, i) => net.startAgent({ name: `agent-${i}` })))
    const fetch = (a) => swarmFetch(a, name, size)
    // Every agent back to holding nothing, and seeing the seeder alone.
    const forget = (some) => forgetFile(some, agents, name)
    await forget(agents)
    const paths = (await Promise.all(agents.map((a) => call(a, 'peers')))).map((ps) => ps.find((p) => p.name === 'seeder')?.path ?? 'none')
    const sum = (xs) => xs.reduce((a, b) => a + b, 0)
    const m = { seq: [], par: [], perAgent: [], seedSent: [], agentsSent: [], agentsRecv: [] }
    for (let r = 0; r < RUNS; r++) {
      m.seq.push(await oneAfterAnother(agents, fetch, forget))

      const [s0, a0] = [await traffic(seeder), await Promise.all(agents.map(traffic))]
      const [wall, results] = await timed(() => Promise.all(agents.map(fetch)))
      const [s1, a1] = [await traffic(seeder), await Promise.all(agents.map(traffic))]
      m.par.push(wall)
      m.perAgent.push(...results.map((x) => x.durationMs / 1000))
      m.seedSent.push((s1.sent - s0.sent) / MiB)
      m.agentsSent.push(sum(a1.map((t, i) => t.sent - a0[i].sent)) / MiB)
      m.agentsRecv.push(sum(a1.map((t, i) => t.received - a0[i].received)) / MiB)
      await forget(agents)
    }
    return {
      id: 'fanout',
      title: '4. Fan-out',
      config: { agents: AGENTS, bytes: size, runs: RUNS, pathsToSeeder: paths },
      rows: [
        row(`${AGENTS} agents fetch ${size / MiB} MiB at once from 1 seeder: wall until the last has it`, 's', m.par, { ratio: speedup(m.seq, m.par, 'vs one after another') }),
        row(`  one agent's fetch within that (${AGENTS}×${RUNS} fetches)`, 's', m.perAgent),
        row(`baseline: the ${AGENTS} fetching one after another from the seeder alone: sum of walls`, 's', m.seq),
        row('bytes sent by the seeder during the concurrent fetch', 'MiB', m.seedSent),
        row('bytes sent by the other agents during the concurrent fetch (together)', 'MiB', m.agentsSent),
        row('bytes received by the agents (together)', 'MiB', m.agentsRecv)
      ],
      notes: [
        `The seeder runs with --seed; the agents' paths to it: ${paths.filter((p) => p === 'tcp').length} of ${AGENTS} over TCP (the rest: ${paths.filter((p) => p !== 'tcp').join(', ') || 'none'}). ${RUNS} runs, each first the one-after-another baseline (every agent deletes its copy after its fetch and waits until every agent sees the seeder alone), then all ${AGENTS} at once.`,
        `Bytes are the agents' \`peers\` counters (bytesSent/bytesReceived over every connection, all frames), before and after; ${AGENTS} × ${size / MiB} MiB = ${AGENTS * size / MiB} MiB had to move.`,
        quick ? `Quick run: ${AGENTS} agents and ${size / MiB} MiB instead of 8 and 512 MiB.` : ''
      ].filter(Boolean)
    }
  } finally {
    await net.close()
  }
}

await main(import.meta.url, bench)
