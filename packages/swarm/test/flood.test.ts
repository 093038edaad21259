// Issue 17, "a member that floods": a hostile member (it knows the network
// key, and speaks the real Noise secret stream over TCP) advertises millions
// of entries with names at the size limit and sends requests at full rate,
// (to a seeder: requests for the file it serves; to a receiver: inventory
// alone) while the receiver downloads that file from the seeder. Both cut it
// off, each for its own budget; the download completes with the right bytes.
import { describe, expect, it, onTestFinished } from 'vitest'
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { createHash } from 'node:crypto'
import {
  encodeMessage, MAX_BUILD_BYTES, MAX_BUILDS_BATCH, MAX_BUILDS_MESSAGE_BYTES, MAX_INVENTORY_BATCH, MAX_NAME_BYTES, PROTOCOL_VERSION, type FileEntry
} from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof, signBuild, type BuildAd, type KeyPair, type PeerLimits } from '../src/index.js'
import { BufferSink, captureLogger, MemorySource, startSwarm, tempDir, until } from './helpers.js'

/** Entries the hostile member is ready to advertise. */
const FLOOD_ENTRIES = 2_000_000
/** Requests it sends after each inventory batch. */
const REQUESTS_PER_BATCH = 1024

/** A batch of made-up entries from `from`: digests it picked (mostly zeros), names of MAX_NAME_BYTES bytes. */
function floodBatch (from: number): FileEntry[] {
  return Array.from({ length: MAX_INVENTORY_BATCH }, (_, j) => {
    const blake2b = Buffer.alloc(64)
    blake2b.writeUInt32BE(from + j, 60)
    const stem = `flood-${from + j}-`
    return { name: stem + 'x'.repeat(MAX_NAME_BYTES - stem.length), size: 1, blake2b, sha512: Buffer.alloc(0) }
  })
}

/**
 * Connects to an agent's data port as a member and floods it until it is
 * cut off (or the flood is spent): inventory batches, each followed (with
 * `wanted`) by requests for that file, as fast as the connection takes them.
 */
async function flood (port: number, networkKey: Buffer, wanted?: Buffer, builds?: (batch: number) => BuildAd[]): Promise<{ entries: number, requests: number, builds: number, cutOff: boolean }> {
  const socket = connect({ host: '127.0.0.1', port })
  const stream = new NoiseSecretStream(true, socket, { keyPair: createKeyPair() })
  onTestFinished(() => { stream.destroy() })
  stream.on('error', () => {})
  stream.on('data', () => {}) // it reads whatever it is sent: only its own sending is hostile
  let closed = false
  stream.on('close', () => { closed = true })
  expect(await stream.opened).toBe(true)
  const write = (frame: Buffer): Promise<void> => stream.write(frame) || closed
    ? Promise.resolve()
    : new Promise((resolve) => {
      const done = (): void => { stream.off('drain', done); stream.off('close', done); resolve() }
      stream.on('drain', done)
      stream.on('close', done)
    })
  await write(encodeMessage({
    type: 'hello', version: PROTOCOL_VERSION, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey), name: 'flood', dataPort: 0, dataOnly: false, seeder: false
  }))
  let entries = 0
  let requests = 0
  let sentBuilds = 0
  let id = 1
  for (let from = 0, batch = 0; from < FLOOD_ENTRIES && !closed; from += MAX_INVENTORY_BATCH, batch++) {
    // A hostile box floods with its own CPU: here it shares the test's, so it lets the others run between batches.
    await new Promise((resolve) => setImmediate(resolve))
    if (builds) {
      const added = builds(batch)
      await write(encodeMessage({ type: 'builds', reset: batch === 0, added, removed: [] }))
      sentBuilds += added.length
    } else {
      await write(encodeMessage({ type: 'inventory', reset: from === 0, added: floodBatch(from), removed: [] }))
      entries += MAX_INVENTORY_BATCH
    }
    for (let i = 0; wanted && i < REQUESTS_PER_BATCH && !closed; i++, requests++) await write(encodeMessage({ type: 'request', id: id++, blake2b: wanted, offset: 0, length: 1024 }))
  }
  return { entries, requests, builds: sentBuilds, cutOff: closed }
}

const CHOST = 'x86_64-pc-linux-gnu'

/** A build signed by `keyPair`: its CPV padded to `cpvBytes`, a DESC of `descBytes`. */
function signed (keyPair: KeyPair, i: number, cpvBytes = 40, descBytes = 0): BuildAd {
  const stem = `flood-${i}-x`
  const cpv = `app-misc/${stem}${'x'.repeat(Math.max(0, cpvBytes - 9 - stem.length - 4))}-1.0`
  const blake2b = createHash('blake2b512').update(`flood build ${i}`).digest()
  const fields: Record<string, string> = { CPV: cpv, BUILD_ID: '1', CHOST, SIZE: '1', USE: `u${i}`, ...(descBytes > 0 ? { DESC: 'd'.repeat(descBytes) } : {}) }
  return signBuild({ blake2b, size: 1, group: CHOST, fields }, keyPair)
}

/**
 * Builds for the flood, batch by batch, forever: real signed ones first,
 * small ones with a CPV at Portage's 256-character bound (a full batch) and
 * ones at the entry's byte bound (as many as a message takes), then copies
 * whose digest was changed, which the signature no longer covers (free to
 * make, each costs the receiver a signature check).
 */
function buildFlood (keyPair: KeyPair): (batch: number) => BuildAd[] {
  const small = Array.from({ length: 2 * MAX_BUILDS_BATCH }, (_, i) => signed(keyPair, i, 256))
  const perMessage = Math.floor(MAX_BUILDS_MESSAGE_BYTES / MAX_BUILD_BYTES) - 1
  const large = Array.from({ length: 4 * perMessage }, (_, i) => signed(keyPair, 1_000_000 + i, 256, MAX_BUILD_BYTES - 512))
  return (batch) => {
    if (batch < 2) return small.slice(batch * MAX_BUILDS_BATCH, (batch + 1) * MAX_BUILDS_BATCH)
    if (batch < 6) return large.slice((batch - 2) * perMessage, (batch - 1) * perMessage)
    return small.slice(0, MAX_BUILDS_BATCH).map((ad, j) => {
      const blake2b = Buffer.from(ad.blake2b)
      blake2b.writeUInt32BE(batch * MAX_BUILDS_BATCH + j, 0)
      return { ...ad, blake2b }
    })
  }
}

/** A seeder with an 8 MiB file and a receiver that dials it, both with `limits`, each with its own captured log. */
async function honestPair (limits: PeerLimits) {
  const networkKey = generateNetworkKey()
  const seederLog = captureLogger()
  const receiverLog = captureLogger()
  const source = new MemorySource(await tempDir())
  const data = randomBytes(8 * 1024 * 1024)
  const file = await source.add('honest-1.tar.xz', data)
  const seeder = await startSwarm([], { networkKey, source, name: 'seeder', logger: seederLog, limits })
  const receiver = await startSwarm([], {
    networkKey, source: new MemorySource(await tempDir()), name: 'receiver', logger: receiverLog, limits, staticPeers: [{ host: '127.0.0.1', port: seeder.dataPort! }]
  })
  return { networkKey, seederLog, receiverLog, data, file, seeder, receiver }
}

describe('a member that floods (issue 17)', () => {
  it('is cut off by the seeder and the receiver, with a warning and ERR_PEER_OVER_BUDGET, while an honest transfer completes', async () => {
    // Budgets a fifth of the defaults: the same cut-offs for less work, as all of it shares one process (and CI's cores).
    const { networkKey, seederLog, receiverLog, data, file, seeder, receiver } = await honestPair({ maxRemoteInventoryBytes: 5 * 1024 * 1024, maxRequestsPerSecond: 200 })
    const hex = file.blake2b.toString('hex')
    await until(() => receiver.find({ blake2b: hex }).length === 1, 30_000, 'the receiver to see the file')

    const sink = new BufferSink()
    const [download, atSeeder, atReceiver] = await Promise.all([
      receiver.download(file, sink),
      flood(seeder.dataPort!, networkKey, file.blake2b),
      flood(receiver.dataPort!, networkKey)
    ])

    expect(download.length).toBeGreaterThan(0)
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true)
    for (const [hostile, log, budget] of [[atSeeder, seederLog, 'requests'], [atReceiver, receiverLog, 'inventory-bytes']] as const) {
      expect(hostile.cutOff).toBe(true)
      expect(hostile.entries).toBeLessThan(FLOOD_ENTRIES) // cut off long before it was done
      const warned = log.lines.filter((l) => l.event === 'peer.over-budget')
      expect(warned).toHaveLength(1)
      expect(warned[0]).toMatchObject({ level: 'warn', fields: { code: 'ERR_PEER_OVER_BUDGET', peer: expect.stringMatching(/^flood@/) as unknown } })
      expect(warned[0]!.fields.budget).toBe(budget)
    }
    // The honest pair is still connected, and nothing of the flood stayed behind.
    expect(receiver.readyPeers().map((p) => p.name)).toEqual(['seeder'])
    expect(seeder.readyPeers().map((p) => p.name)).toEqual(['receiver'])
    expect(receiver.find({ name: floodBatch(0)[0]!.name })).toEqual([])
    expect(receiver.find({ blake2b: hex })[0]?.holders.map((p) => p.name)).toEqual(['seeder'])
  })

  it('flooding Builds (millions of entries, at the size bounds, with requests at full rate) it is limited and cut off with the reason; the honest transfer and builds go on, memory stays bounded', { timeout: 180_000 }, async () => {
    // Build budgets below the defaults, for less work in one shared process: the same cut-offs.
    const { networkKey, seederLog, receiverLog, data, file, seeder, receiver } = await honestPair({
      maxRequestsPerSecond: 200, maxRemoteBuilds: 3000, maxRemoteBuildBytes: 4 * 1024 * 1024, maxBuildPoolBytes: 6 * 1024 * 1024, maxBuildEntriesPerSecond: 500
    })
    const builder = createKeyPair()
    const honestBuilds = Array.from({ length: 20 }, (_, i) => signed(builder, 5_000_000 + i))
    seeder.setBuilds(honestBuilds)
    const hex = file.blake2b.toString('hex')
    await until(() => receiver.find({ blake2b: hex }).length === 1 && receiver.builds().length === 20, 30_000, 'the receiver to see the file and the honest builds')

    // RSS of this process (both agents, and the flooders' own frames) each 50 ms while the flood lasts.
    const rssBefore = process.memoryUsage().rss
    let rssPeak = rssBefore
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss) }, 50)
    onTestFinished(() => clearInterval(sampler))
    const sink = new BufferSink()
    const [download, atReceiver, atSeeder] = await Promise.all([
      receiver.download(file, sink),
      flood(receiver.dataPort!, networkKey, undefined, buildFlood(createKeyPair())),
      flood(seeder.dataPort!, networkKey, file.blake2b, buildFlood(createKeyPair()))
    ])
    clearInterval(sampler)
    const growthMiB = (rssPeak - rssBefore) / 2 ** 20
    console.log(`builds flood: receiver got ${atReceiver.builds} build entries before the cut-off, the seeder ${atSeeder.builds} and ${atSeeder.requests} requests; RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB (+${growthMiB.toFixed(0)})`)

    expect(download.length).toBeGreaterThan(0)
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true)
    for (const [hostile, log, budget] of [[atReceiver, receiverLog, 'build-entries'], [atSeeder, seederLog, 'requests']] as const) {
      expect(hostile.cutOff).toBe(true)
      expect(hostile.builds).toBeLessThan(FLOOD_ENTRIES) // cut off long before the flood was spent
      const warned = log.lines.filter((l) => l.event === 'peer.over-budget')
      expect(warned).toHaveLength(1)
      expect(warned[0]).toMatchObject({ level: 'warn', fields: { code: 'ERR_PEER_OVER_BUDGET', budget, peer: expect.stringMatching(/^flood@/) as unknown } })
      // And it may not come straight back.
      expect(log.lines.filter((l) => l.event === 'peer.cooling-off')).toMatchObject([{ level: 'warn', fields: { code: 'ERR_PEER_OVER_BUDGET' } }])
    }
    // Before the cut-off, what went past the builds' own budgets was ignored, with one warning naming it.
    const limited = receiverLog.lines.filter((l) => l.event === 'builds.cut-off' && l.level === 'warn')
    expect(limited).toMatchObject([{ fields: { code: 'ERR_BUILDS_LIMIT', peer: expect.stringMatching(/^flood@/) as unknown } }])
    expect(receiver.buildCounts().refused).toBeGreaterThan(0)
    // The honest pair is still connected; the receiver keeps the seeder's builds, and none of the flood.
    expect(receiver.readyPeers().map((p) => p.name)).toEqual(['seeder'])
    expect(seeder.readyPeers().map((p) => p.name)).toEqual(['receiver'])
    expect(receiver.builds().map((r) => r.ad.fields.CPV).sort()).toEqual(honestBuilds.map((b) => b.fields.CPV).sort())
    // Bounded: the flood's builds past the budgets were never kept. The growth is both agents' (budgets of a few
    // MiB of builds) plus the flooders' own frames and signed builds, all in this one process.
    expect(growthMiB).toBeLessThan(400)
  })
})
