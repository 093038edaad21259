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
import { encodeMessage, MAX_INVENTORY_BATCH, MAX_NAME_BYTES, PROTOCOL_VERSION, type FileEntry } from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof } from '../src/index.js'
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
async function flood (port: number, networkKey: Buffer, wanted?: Buffer): Promise<{ entries: number, requests: number, cutOff: boolean }> {
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
  let id = 1
  for (let from = 0; from < FLOOD_ENTRIES && !closed; from += MAX_INVENTORY_BATCH) {
    // A hostile box floods with its own CPU: here it shares the test's, so it lets the others run between batches.
    await new Promise((resolve) => setImmediate(resolve))
    await write(encodeMessage({ type: 'inventory', reset: from === 0, added: floodBatch(from), removed: [] }))
    entries += MAX_INVENTORY_BATCH
    for (let i = 0; wanted && i < REQUESTS_PER_BATCH && !closed; i++, requests++) await write(encodeMessage({ type: 'request', id: id++, blake2b: wanted, offset: 0, length: 1024 }))
  }
  return { entries, requests, cutOff: closed }
}

describe('a member that floods (issue 17)', () => {
  it('is cut off by the seeder and the receiver, with a warning and ERR_PEER_OVER_BUDGET, while an honest transfer completes', async () => {
    const networkKey = generateNetworkKey()
    const seederLog = captureLogger()
    const receiverLog = captureLogger()
    const source = new MemorySource(await tempDir())
    const data = randomBytes(8 * 1024 * 1024)
    const file = await source.add('honest-1.tar.xz', data)
    // Budgets a fifth of the defaults: the same cut-offs for less work, as all of it shares one process (and CI's cores).
    const limits = { maxRemoteInventoryBytes: 5 * 1024 * 1024, maxRequestsPerSecond: 200 }
    const seeder = await startSwarm([], { networkKey, source, name: 'seeder', logger: seederLog, limits })
    const receiver = await startSwarm([], {
      networkKey, source: new MemorySource(await tempDir()), name: 'receiver', logger: receiverLog, limits, staticPeers: [{ host: '127.0.0.1', port: seeder.dataPort! }]
    })
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
})
