import { describe, expect, it, onTestFinished } from 'vitest'
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { decodeMessage, encodeMessage, FrameDecoder, MAX_INVENTORY_BATCH, PROTOCOL_VERSION, type BuildsMessage, type Message, type PeerAddress } from '@distswarm/protocol'
import { generateNetworkKey, membershipProof, type SecretStream } from '../src/index.js'
import { Peer, type PeerInit } from '../src/peer.js'
import { MemorySource, tempDir, until } from './helpers.js'

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
    await until(() => stream.sent.filter((m) => m.type === 'inventory').length === 4, 5000, 'three batches and the delta')
    const inv = stream.sent.filter((m) => m.type === 'inventory')
    expect(inv.map((m) => [m.reset, m.added.length, m.removed.length])).toEqual([
      [true, MAX_INVENTORY_BATCH, 0], [false, MAX_INVENTORY_BATCH, 0], [false, 5000 - 2 * MAX_INVENTORY_BATCH, 0], [false, 0, 1]
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
    const { stream } = await readyPeer(source, { requestsPerSecond: 100 })
    const burst = Buffer.concat(Array.from({ length: 300 }, (_, i) => encodeMessage({ type: 'request', id: i + 1, blake2b: file.blake2b, offset: 0, length: 100 })))
    stream.emit('data', burst)
    const limited = stream.sent.filter((m) => m.type === 'error' && m.code === 'BUSY' && /requests a second/.test(m.message)).length
    expect(limited).toBeGreaterThanOrEqual(95) // 300 at once against a burst of 200 (a token may refill meanwhile)
    expect(limited).toBeLessThanOrEqual(100)
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
