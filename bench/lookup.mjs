#!/usr/bin/env node
// 3. `where` latency over a real agent's control socket while 10 connected
// peers advertise 70 000 entries each, and the agent's memory with those
// inventories. The peers are DistSwarm instances in this process with a
// synthetic LocalSource: they speak the real protocol (Noise over TCP,
// hello with the membership proof, inventory batches) to the agent
// process, without 700 000 real files behind them.
// Usage: node bench/lookup.mjs [--quick] [--json FILE]
import { randomBytes } from 'node:crypto'
import { toHex } from '@distswarm/protocol'
import { DistSwarm, createKeyPair } from '@distswarm/swarm'
import { MiB, call, cpuOf, deadline, main, memOf, now, quantile, row, startNet, timed, waitFor } from './lib.mjs'

const ROUNDS = 3

export async function bench ({ quick, onCleanup }) {
  const PEERS = quick ? 4 : 10
  const ENTRIES = quick ? 20_000 : 70_000
  const QUERIES = quick ? 500 : 2000
  const FRESH = quick ? 50 : 100
  // The peers share a universe of twice their size, in overlapping windows: a file is held by half of them, as on a LAN of Gentoo boxes.
  const universe = Array.from({ length: 2 * ENTRIES }, (_, i) => ({
    name: `pkg${i % 997}-${i}-${i % 7}.${i % 13}.tar.xz`, size: 1000 + (i * 7919) % 100_000_000, blake2b: randomBytes(64), sha512: randomBytes(64), path: '/nonexistent'
  }))
  const indexOf = new Map(universe.map((e, i) => [toHex(e.blake2b), i]))
  const window = (p) => { const from = p * Math.floor(universe.length / PEERS); return Array.from({ length: ENTRIES }, (_, i) => universe[(from + i) % universe.length]) }

  const net = await startNet()
  const swarms = []
  const cleanup = async () => { await Promise.all(swarms.map((s) => s.stop())); await net.close() }
  onCleanup(cleanup)
  try {
    const agent = await net.startAgent({ name: 'agent' })
    const { dataPort } = await agent.status()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const rssAlone = memOf(agent.child.pid, 'VmRSS')
    const t0 = now()
    for (let p = 0; p < PEERS; p++) {
      const entries = window(p)
      const held = new Set(entries)
      const swarm = new DistSwarm({
        networkKey: Buffer.from(net.networkKey, 'hex'),
        keyPair: createKeyPair(),
        bootstrap: [],
        host: '127.0.0.1',
        dataPort: null,
        staticPeers: [{ host: '127.0.0.1', port: dataPort }],
        name: `peer-${p}`,
        source: { entries: () => entries, get: (d) => { const e = universe[indexOf.get(toHex(d))]; return held.has(e) ? e : undefined } }
      })
      swarms.push(swarm)
      await swarm.start()
    }
    await waitFor(async () => {
      const peers = await call(agent, 'peers')
      return peers.length === PEERS && peers.every((p) => p.files === ENTRIES)
    }, 300_000, `${PEERS} peers with ${ENTRIES} files each`, 200)
    const loadedS = now() - t0

    const rnd = () => Math.floor(Math.random() * universe.length)
    const query = (i) => i % 10 === 9 ? `missing-${i}.tar.gz` : i % 2 ? universe[rnd()].name : toHex(universe[rnd()].blake2b)
    const m = { p50: [], p99: [], max: [], fresh50: [], fresh99: [], rss: [], hwm: [], cpu: [] }
    const c = await agent.client()
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const ms = []
        const cpu0 = cpuOf(agent.child.pid)
        for (let i = 0; i < QUERIES; i++) {
          const q = query(i)
          const [s, res] = await timed(() => deadline(c.call('where', { query: q }), 10_000, 'where'))
          if ((res.remote.length > 0) === q.startsWith('missing-')) throw new Error(`where ${q}: ${res.remote.length} remote files`)
          ms.push(s * 1000)
        }
        m.cpu.push((cpuOf(agent.child.pid) - cpu0) * 1000 / QUERIES)
        m.p50.push(quantile(ms, 0.5))
        m.p99.push(quantile(ms, 0.99))
        m.max.push(Math.max(...ms))
        // As the CLI does it: a new connection for every query.
        const fresh = []
        for (let i = 0; i < FRESH; i++) fresh.push((await timed(() => call(agent, 'where', { query: query(i) }, 10_000)))[0] * 1000)
        m.fresh50.push(quantile(fresh, 0.5))
        m.fresh99.push(quantile(fresh, 0.99))
        m.rss.push(memOf(agent.child.pid, 'VmRSS'))
        m.hwm.push(memOf(agent.child.pid, 'VmHWM'))
      }
    } finally {
      c.close()
    }
    return {
      id: 'lookup',
      title: '3. Lookup',
      config: { peers: PEERS, entriesPerPeer: ENTRIES, queriesPerRound: QUERIES, rounds: ROUNDS },
      rows: [
        row(`where p99, ${PEERS} peers × ${ENTRIES} entries, one control connection`, 'ms', m.p99, { target: { op: '<', value: 5, text: '< 5 ms' } }),
        row('  where p50', 'ms', m.p50),
        row('  where slowest', 'ms', m.max),
        row('  agent CPU per where (CPU-ms, one control connection; steadier than latency on a loaded box)', 'ms', m.cpu),
        row('  where p99, a new control connection per query (as the CLI)', 'ms', m.fresh99),
        row('  where p50, a new control connection per query', 'ms', m.fresh50),
        row('agent RSS with those inventories (VmRSS after each round)', 'MiB', m.rss, { target: { op: '<', value: 150, text: '< 150 MiB' } }),
        row('  agent peak RSS (VmHWM)', 'MiB', m.hwm),
        row('  agent RSS before any peer (1 sample)', 'MiB', [rssAlone]),
        row('  time for every inventory to arrive (1 sample)', 's', [loadedS])
      ],
      notes: [
        `The peers are ${PEERS} DistSwarm instances in the bench process, each with a synthetic LocalSource of ${ENTRIES} entries (random digests, no files), dialling the agent process's TCP data port as static peers: the real protocol, the real agent; only the peers' disks are missing.`,
        `Each entry is held by half of the peers (windows over ${universe.length} names).`,
        'Remote entries live packed in the agent\'s EntryPool (digests and names in buffers, typed-array hash tables, a bitset of slots per peer); the peers send their inventories in batches of 256 entries.',
        `${ROUNDS} rounds of ${QUERIES} sequential queries (45% by name, 45% by digest, 10% of names no peer has) and ${FRESH} on fresh connections; the figures are the rounds' percentiles.`,
        quick ? `Quick run: ${PEERS} peers × ${ENTRIES} entries instead of 10 × 70 000.` : ''
      ].filter(Boolean)
    }
  } finally {
    await cleanup()
  }
}

await main(import.meta.url, bench)
