import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { EventEmitter } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { decodeMessage, encodeFrame, encodeMessage, FrameDecoder, MAX_INVENTORY_BATCH, PROTOCOL_VERSION, type BuildsMessage, type Message, type PeerAddress } from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof, type SecretStream } from '../src/index.js'
import { INVENTORY_SEND_BATCH, Peer, type PeerInit } from '../src/peer.js'
import { EntryPool } from '../src/entries.js'
import { DataLink } from '../src/link.js'
import { captureLogger, MemorySource, tempDir, until } from './helpers.js'

/** A stream whose writes back up and never drain: a peer that stops reading. */
class CloggedStream extends EventEmitter {
  readonly publicKey = randomBytes(32)
  readonly remotePublicKey = randomBytes(32)
  readonly handshakeHash = randomBytes(64)
  written = 0
  destroyed = false
  write (data: Uint8Array): boolean { this.written += data.byteLength; return false }
  end (): void {}
  destroy (): void { this.destroyed = true }
}

describe('Peer uploads', () => {
  it('drop a peer that stops reading mid-upload once uploadStallMs passes', async () => {
    const networkKey = generateNetworkKey()
    const source = new MemorySource(await tempDir())
    const file = await source.add('big.tar', randomBytes(4 * 1024 * 1024))
    const stream = new CloggedStream()
    let closedWith: Error | null | undefined
    const peer = new Peer({
      stream: stream as unknown as SecretStream,
      networkKey,
      localName: 'victim',
      source,
      limits: { uploadStallMs: 300 },
      onReady: () => {},
      onInventory: () => {},
      onClose: (_, reason) => { closedWith = reason }
    })
    stream.emit('data', encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'sloth', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, stream.handshakeHash, stream.remotePublicKey)
    }))
    expect(peer.state).toBe('ready')
    stream.emit('data', encodeMessage({ type: 'request', id: 1, blake2b: file.blake2b, offset: 0, length: file.size }))
    await until(() => closedWith !== undefined, 5000, 'the peer to be dropped')
    expect(closedWith).toMatchObject({ code: 'ERR_TIMEOUT' })
    expect(stream.written).toBeLessThan(file.size) // it stopped sending at the first full buffer
  })
})

/** A stream that takes every write and keeps the messages. */
class RecordingStream extends EventEmitter {
  readonly publicKey = randomBytes(32)
  readonly remotePublicKey = randomBytes(32)
  readonly handshakeHash = randomBytes(64)
  readonly sent: Message[] = []
  private readonly decoder = new FrameDecoder()
  paused = false
  pause (): void { this.paused = true }
  write (data: Uint8Array): boolean {
    for (const f of this.decoder.push(data)) this.sent.push(decodeMessage(f))
    return true
  }
  end (): void {}
  destroy (): void {}
}

async function readyPeer (source: MemorySource, limits = {}, init: Partial<PeerInit> = {}) {
  const networkKey = generateNetworkKey()
  const stream = new RecordingStream()
  const peer = new Peer({
    stream: stream as unknown as SecretStream, networkKey, localName: 'victim', source, limits,
    onReady: () => {}, onInventory: () => {}, onClose: () => {}, ...init
  })
  onTestFinished(() => peer.destroy())
  stream.emit('data', encodeMessage({
    type: 'hello', version: PROTOCOL_VERSION, name: 'remote', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, stream.handshakeHash, stream.remotePublicKey)
  }))
  expect(peer.state).toBe('ready')
  return { peer, stream }
}

describe('Peer inventory', () => {
  it('sends a large inventory in bounded batches, and a delta issued meanwhile after them', async () => {
    const source = new MemorySource(await tempDir())
    const entries = Array.from({ length: 5000 }, (_, i) => ({ name: `f-${i}.tar.gz`, size: i, blake2b: randomBytes(64), sha512: randomBytes(64), path: '/nonexistent' }))
    for (const e of entries) source.files.set(e.blake2b.toString('hex'), e)
    const { peer, stream } = await readyPeer(source)
    peer.sendInventoryDelta([], [entries[0]!.blake2b]) // while batches are still going out
    const batches = Math.ceil(5000 / INVENTORY_SEND_BATCH)
    await until(() => stream.sent.filter((m) => m.type === 'inventory').length === batches + 1, 5000, 'the batches and the delta')
    const inv = stream.sent.filter((m) => m.type === 'inventory')
    expect(INVENTORY_SEND_BATCH).toBeLessThanOrEqual(MAX_INVENTORY_BATCH)
    expect(inv.map((m) => [m.reset, m.added.length, m.removed.length])).toEqual([
      [true, INVENTORY_SEND_BATCH, 0],
      ...Array.from({ length: batches - 2 }, () => [false, INVENTORY_SEND_BATCH, 0]),
      [false, 5000 - (batches - 1) * INVENTORY_SEND_BATCH, 0],
      [false, 0, 1]
    ])
    const remote = new Set<string>()
    for (const m of inv) {
      if (m.reset) remote.clear()
      for (const e of m.added) remote.add(e.blake2b.toString('hex'))
      for (const d of m.removed) remote.delete(d.toString('hex'))
    }
    expect(remote.size).toBe(4999)
    expect(remote.has(entries[0]!.blake2b.toString('hex'))).toBe(false)
  })
})

describe('Peer request limits', () => {
  it('answers requests beyond the rate limit with BUSY', async () => {
    const source = new MemorySource(await tempDir())
    const file = await source.add('small.tar', randomBytes(100))
    // The clock stands still, so no token refills while a loaded machine works through the burst.
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const { stream } = await readyPeer(source, { requestsPerSecond: 100 })
      const burst = Buffer.concat(Array.from({ length: 300 }, (_, i) => encodeMessage({ type: 'request', id: i + 1, blake2b: file.blake2b, offset: 0, length: 100 })))
      stream.emit('data', burst)
      const limited = stream.sent.filter((m) => m.type === 'error' && m.code === 'BUSY' && /requests a second/.test(m.message)).length
      expect(limited).toBe(100) // 300 at once against a burst of 200
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('PeerAddresses on a connection', () => {
  it('reaches onPeerAddresses; an older peer answering UNKNOWN_TYPE does not end the connection', async () => {
    const networkKey = generateNetworkKey()
    const stream = new RecordingStream()
    const heard: PeerAddress[][] = []
    let closed = false
    const peer = new Peer({
      stream: stream as unknown as SecretStream,
      networkKey,
      localName: 'new',
      source: new MemorySource(await tempDir()),
      onReady: () => {},
      onInventory: () => {},
      onPeerAddresses: (_, addresses) => heard.push(addresses),
      onClose: () => { closed = true }
    })
    stream.emit('data', encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'old', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, stream.handshakeHash, stream.remotePublicKey)
    }))
    expect(peer.state).toBe('ready')
    const addresses = [{ publicKey: randomBytes(32), host: '10.77.0.11', port: 49738 }]
    peer.sendPeerAddresses(addresses)
    expect(stream.sent.at(-1)).toEqual({ type: 'peer-addresses', addresses })
    stream.emit('data', encodeMessage({ type: 'error', code: 'UNKNOWN_TYPE', id: 0, message: 'unknown message type' }))
    expect(peer.state).toBe('ready')
    expect(closed).toBe(false)
    stream.emit('data', encodeMessage({ type: 'peer-addresses', addresses }))
    expect(heard).toEqual([addresses])
    peer.destroy()
  })
})

/** Inventory messages of `count` entries in all, `per` each, with names of `nameBytes` bytes. */
function inventoryFrames (count: number, per: number, nameBytes = 20, tag = 'f'): Buffer {
  const frames: Buffer[] = []
  for (let i = 0; i < count; i += per) {
    const added = Array.from({ length: Math.min(per, count - i) }, (_, j) => {
      const stem = `${tag}-${i + j}-`
      return { name: stem + 'x'.repeat(nameBytes - stem.length), size: 1, blake2b: randomBytes(64), sha512: randomBytes(64) }
    })
    frames.push(encodeMessage({ type: 'inventory', reset: i === 0, added, removed: [] }))
  }
  return Buffer.concat(frames)
}

/** A peer whose close reason and log a test looks at. */
async function watchedPeer (limits = {}, entries?: EntryPool) {
  const source = new MemorySource(await tempDir())
  const log = captureLogger()
  let reason: Error | null | undefined
  const ready = await readyPeer(source, limits, { logger: log, entries, onClose: (_, why) => { reason = why } })
  return { ...ready, source, log, closedWith: () => reason }
}

function expectCutOff (w: Awaited<ReturnType<typeof watchedPeer>>, budget: string): void {
  expect(w.peer.closed).toBe(true)
  expect(w.closedWith()).toMatchObject({ code: 'ERR_PEER_OVER_BUDGET' })
  expect(w.log.lines.filter((l) => l.event === 'peer.over-budget')).toEqual([
    { level: 'warn', event: 'peer.over-budget', fields: expect.objectContaining({ budget, code: 'ERR_PEER_OVER_BUDGET' }) as unknown }
  ])
  // The remote is told why before the connection closes.
  expect(w.stream.sent.at(-1)).toMatchObject({ type: 'error', code: 'BAD_MESSAGE', message: expect.stringMatching(new RegExp(`${budget} budget`)) as unknown })
  // And nothing more it sends is read (it may still be flooding).
  expect(w.stream.paused).toBe(true)
}

describe('Peer budgets (issue 17: a member that floods)', () => {
  it('cuts off a peer that advertises more entries than maxRemoteEntries, and frees them', async () => {
    const pool = new EntryPool()
    const w = await watchedPeer({ maxRemoteEntries: 1000 }, pool)
    w.stream.emit('data', inventoryFrames(1000, 500))
    expect(w.peer.closed).toBe(false)
    expect(w.peer.files.size).toBe(1000)
    w.stream.emit('data', inventoryFrames(1500, 500).subarray(0)) // a reset, then past the budget
    expectCutOff(w, 'inventory-entries')
    expect(pool.size).toBe(0)
  })

  it('cuts off a peer whose names at the size limit take more than maxRemoteInventoryBytes', async () => {
    const w = await watchedPeer({ maxRemoteInventoryBytes: 1024 * 1024 })
    w.stream.emit('data', inventoryFrames(2000, 250, 255))
    expect(w.peer.closed).toBe(false)
    w.stream.emit('data', inventoryFrames(3000, 250, 255, 'g'))
    expectCutOff(w, 'inventory-bytes')
  })

  it('holds the shared pool to maxPoolBytes by cutting off whoever holds the most entries alone', async () => {
    const pool = new EntryPool({ maxBytes: 2 * 1024 * 1024 })
    const honest = await watchedPeer({}, pool)
    const hostile = await watchedPeer({}, pool)
    honest.stream.emit('data', inventoryFrames(4000, 500, 30, 'honest'))
    // Each alone within its own budget; together past the pool's.
    hostile.stream.emit('data', inventoryFrames(8000, 500, 30, 'flood'))
    expectCutOff(hostile, 'pool-bytes')
    expect(honest.peer.closed).toBe(false)
    expect(honest.peer.files.size).toBe(4000)
    expect(pool.size).toBe(4000)
    expect(pool.bytes).toBeLessThanOrEqual(pool.maxBytes)
  })

  it('stops reading the socket of a data link it cuts off (a data link has no pause of its own)', async () => {
    const networkKey = generateNetworkKey()
    const server = createServer()
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
    const remote = new DataLink(connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port }), true, createKeyPair())
    const socket = await accepted
    const local = new DataLink(socket, false, createKeyPair())
    onTestFinished(() => { remote.destroy(); local.destroy() })
    for (const link of [remote, local]) link.on('error', () => {})
    expect(await Promise.all([remote.opened, local.opened])).toEqual([true, true])
    let closed = false
    const peer = new Peer({
      stream: local, networkKey, localName: 'victim', source: new MemorySource(await tempDir()), limits: { maxRemoteEntries: 1000 },
      onReady: () => {}, onInventory: () => {}, onClose: () => { closed = true }
    })
    onTestFinished(() => peer.destroy())
    remote.write(encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, name: 'flood', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, remote.handshakeHash, remote.publicKey) }))
    remote.write(inventoryFrames(1500, 500))
    await until(() => closed, 10_000, 'the cut-off')
    expect(socket.isPaused()).toBe(true)
  })

  it('cuts off a peer that keeps requesting far past the BUSY rate (requests, cancels)', async () => {
    const w = await watchedPeer({ requestsPerSecond: 10, maxRequestsPerSecond: 50 })
    const file = await w.source.add('small.tar', randomBytes(100))
    // A burst within twice the budget is only told BUSY, as the rate-limit test above.
    w.stream.emit('data', Buffer.concat(Array.from({ length: 60 }, (_, i) => encodeMessage({ type: 'request', id: i + 1, blake2b: file.blake2b, offset: 0, length: 100 }))))
    expect(w.peer.closed).toBe(false)
    w.stream.emit('data', Buffer.concat(Array.from({ length: 60 }, (_, i) => encodeMessage({ type: 'cancel', id: i + 1 }))))
    expectCutOff(w, 'requests')
  })

  it('cuts off a peer past maxHashRequestsPerMinute', async () => {
    const w = await watchedPeer({ maxHashRequestsPerMinute: 3 })
    const file = await w.source.add('small.tar', randomBytes(100))
    const ask = (id: number) => encodeMessage({ type: 'hash-request', id, blake2b: file.blake2b, offset: 0, length: 100, pieceSize: 64 * 1024 })
    w.stream.emit('data', Buffer.concat([ask(1), ask(2), ask(3)]))
    expect(w.peer.closed).toBe(false)
    w.stream.emit('data', ask(4))
    expectCutOff(w, 'hash-requests')
  })

  it('cuts off an Inventory beside another body in its envelope, and one only a decoder reading the envelope askew finds', async () => {
    const pool = new EntryPool()
    const two = await watchedPeer({}, pool)
    const inv = encodeMessage({ type: 'inventory', reset: false, added: [{ name: 'a.tar', size: 1, blake2b: randomBytes(64), sha512: Buffer.alloc(0) }], removed: [] }).subarray(4)
    two.stream.emit('data', encodeFrame(Buffer.concat([encodeMessage({ type: 'cancel', id: 1 }).subarray(4), inv])))
    expect(two.closedWith()).toMatchObject({ code: 'ERR_BAD_MESSAGE' })
    // A Data body (field 4) whose unknown fixed32 field runs past its length: the generated decoder resumes inside it and finds an Inventory.
    const askew = await watchedPeer({}, pool)
    askew.stream.emit('data', encodeFrame(Buffer.from([0x20, 0x01, 0x25, 0, 0, 0, 0x80, 0x12, 0x02, 0x08, 0x00])))
    expect(askew.closedWith()).toMatchObject({ code: 'ERR_PROTOCOL_VIOLATION' })
    expect(pool.size).toBe(0)
  })

  it('offers a budget hook for piece-map deltas', async () => {
    const w = await watchedPeer({ maxPieceMapDeltasPerSecond: 10 })
    expect(w.peer.chargePieceMap(20)).toBe(true) // a burst of twice the rate
    expect(w.peer.chargePieceMap(5)).toBe(false)
    expectCutOff(w, 'piece-map-deltas')
  })
})

describe('Builds on a connection', () => {
  it('reach onBuilds; an older peer answering UNKNOWN_TYPE to ours does not end the connection', async () => {
    const heard: BuildsMessage[] = []
    const { peer, stream } = await readyPeer(new MemorySource(await tempDir()), {}, { onBuilds: (_, msg) => heard.push(msg) })
    peer.sendBuilds({ reset: true, added: [], removed: [] })
    expect(stream.sent.at(-1)).toEqual({ type: 'builds', reset: true, added: [], removed: [] })
    stream.emit('data', encodeMessage({ type: 'error', code: 'UNKNOWN_TYPE', id: 0, message: 'unknown message type' }))
    expect(peer.state).toBe('ready')
    const msg: BuildsMessage = { type: 'builds', reset: false, added: [], removed: [randomBytes(64)] }
    stream.emit('data', encodeMessage(msg))
    expect(heard).toEqual([msg])
  })
})
