#!/usr/bin/env node
// 11. Ten hostile members at the entry budgets (issue 17, sized against issue
// 14's memory target): a real agent process, and 10 members in this process
// that each know the network key, speak the real Noise secret stream over
// TCP and advertise up to maxRemoteEntries made-up entries (distinct
// digests, so no two share an entry), as fast as the agent reads them. The
// agent's RSS is sampled every second while it lasts; the cut-offs it
// logged (per-peer budgets, the shared entry pool) are counted.
// Usage: node bench/flood.mjs [--quick] [--names BYTES] [--json FILE]
// (--names 255: every name at the size limit, the worst case of the budgets.)
import { connect } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { encodeMessage, MAX_INVENTORY_BATCH, MAX_NAME_BYTES, PROTOCOL_VERSION } from '@distswarm/protocol'
import { createKeyPair, membershipProof } from '@distswarm/swarm'
import { call, main, memOf, row, startNet, waitFor } from './lib.mjs'

/** The agent's default per-peer entry budget (limits.ts maxRemoteEntries). */
const MAX_REMOTE_ENTRIES = 150_000
/** issue 14: an agent with 10 peers x 70 000 entries under 150 MiB. */
const TARGET_MIB = 150

/** --names BYTES: every name padded to that many bytes; 0 (the default) leaves typical names of ~30 bytes. */
const namesAt = process.argv.indexOf('--names')
const NAME_BYTES = namesAt === -1 ? 0 : Number(process.argv[namesAt + 1])
if (!Number.isInteger(NAME_BYTES) || NAME_BYTES < 0 || NAME_BYTES > MAX_NAME_BYTES) throw new Error(`--names: 0 to ${MAX_NAME_BYTES} bytes`)

/** A batch of made-up entries of member `m` from `from`: typical names (~30 bytes) or names of NAME_BYTES, digests no one else has. */
function batch (m, from, n) {
  return Array.from({ length: n }, (_, j) => {
    const blake2b = Buffer.alloc(64)
    blake2b.writeUInt32BE(m, 56)
    blake2b.writeUInt32BE(from + j, 60)
    const name = `hostile${m}-pkg-${from + j}.tar.xz`
    return { name: name.padEnd(NAME_BYTES, 'x'), size: 1_000_000 + j, blake2b, sha512: Buffer.alloc(0) }
  })
}

/** One hostile member: hello, then `entries` entries in full batches; resolves with what it sent once it stops or is cut off. */
async function member (m, port, networkKey, entries) {
  const stream = new NoiseSecretStream(true, connect({ host: '127.0.0.1', port }), { keyPair: createKeyPair() })
  stream.on('error', () => {})
  stream.on('data', () => {})
  let closed = false
  stream.on('close', () => { closed = true })
  if (!await stream.opened) return { sent: 0, closed: true, stream }
  const write = (frame) => stream.write(frame) || closed
    ? Promise.resolve()
    : new Promise((resolve) => { const done = () => { stream.off('drain', done); stream.off('close', done); resolve() }; stream.on('drain', done); stream.on('close', done) })
  await write(encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey), name: `hostile-${m}`, dataPort: 0, dataOnly: false, seeder: false }))
  let sent = 0
  while (sent < entries && !closed) {
    const n = Math.min(MAX_INVENTORY_BATCH, entries - sent)
    await write(encodeMessage({ type: 'inventory', reset: sent === 0, added: batch(m, sent, n), removed: [] }))
    sent += n
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { sent, get closed () { return closed }, stream }
}

export async function bench ({ quick, onCleanup }) {
  const MEMBERS = 10
  const ENTRIES = quick ? 20_000 : MAX_REMOTE_ENTRIES
  const net = await startNet()
  const streams = []
  const cleanup = async () => { for (const s of streams) s.destroy(); await net.close() }
  onCleanup(cleanup)
  try {
    const agent = await net.startAgent({ name: 'agent' })
    let status = null
    await waitFor(async () => { status = await call(agent, 'status'); return status.dataPort !== null }, 60_000, 'the agent\'s data port', 200)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const rssAlone = memOf(agent.child.pid, 'VmRSS')
    const networkKey = Buffer.from(net.networkKey, 'hex')
    const rss = []
    const sampler = setInterval(() => { try { rss.push(memOf(agent.child.pid, 'VmRSS')) } catch {} }, 1000)
    onCleanup(async () => clearInterval(sampler))
    const members = await Promise.all(Array.from({ length: MEMBERS }, async (_, m) => {
      const r = await member(m, status.dataPort, networkKey, ENTRIES)
      streams.push(r.stream)
      return r
    }))
    // Let the agent settle: the last batches read, the pool enforced.
    await new Promise((resolve) => setTimeout(resolve, 5000))
    clearInterval(sampler)
    const peers = await call(agent, 'peers')
    const files = peers.reduce((n, p) => n + p.files, 0)
    const cutOffs = agent.log.filter((l) => l.includes('peer.over-budget'))
    const budgets = {}
    for (const l of cutOffs) { const b = /budget=(\S+)/.exec(l)?.[1] ?? '?'; budgets[b] = (budgets[b] ?? 0) + 1 }
    const hwm = memOf(agent.child.pid, 'VmHWM')
    return {
      id: 'flood',
      title: '11. Hostile members at the entry budgets',
      config: { members: MEMBERS, entriesEach: ENTRIES, nameBytes: NAME_BYTES || 'typical' },
      rows: [
        row(`agent peak RSS (VmHWM), ${MEMBERS} hostile members each sending ${ENTRIES} distinct entries`, 'MiB', [hwm], { target: { op: '<', value: TARGET_MIB, text: `< ${TARGET_MIB} MiB` } }),
        row('  agent RSS, sampled each second while it lasted', 'MiB', rss.length > 0 ? rss : [hwm]),
        row('  agent RSS before any member (1 sample)', 'MiB', [rssAlone]),
        row('  members cut off (peer.over-budget warnings)', 'count', [cutOffs.length]),
        row('  members still connected at the end', 'count', [peers.length]),
        row('  remote entries the agent still holds at the end', 'count', [files]),
        row('  entries the members sent, in all', 'count', [members.reduce((n, r) => n + r.sent, 0)])
      ],
      notes: [
        `A real agent process (default budgets: ${MAX_REMOTE_ENTRIES} entries and 24 MiB a peer, a 32 MiB pool of all peers' entries) and ${MEMBERS} hostile members in the bench process (network key known, Noise secret stream over TCP), each advertising ${ENTRIES} entries of ${NAME_BYTES ? `${NAME_BYTES}-byte` : '~30-byte'} names and digests no one else has, as fast as the agent reads; 5 s to settle after the last was sent. Cut-offs by budget: ${Object.entries(budgets).map(([b, n]) => `${b} ${n}`).join(', ') || 'none'}. A member cut off is not let back in for its cool-off (30 s at the first offence).`,
        quick ? `Quick run: ${ENTRIES} entries a member instead of ${MAX_REMOTE_ENTRIES}.` : ''
      ].filter(Boolean)
    }
  } finally {
    await cleanup()
  }
}

await main(import.meta.url, bench)
