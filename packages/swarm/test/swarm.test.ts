import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import {
  decodeMessage, encodeFrame, encodeMessage, FrameDecoder, MAX_FRAME_SIZE, PROTOCOL_VERSION, type Message
} from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof, topicOf, type DistSwarm, type SecretStream, type Sink } from '../src/index.js'
import type { DataPath } from '../src/datapath.js'
import { BufferSink, MemorySource, random, rawHello, rawPeer, startSwarm, tempDir, testnet, until } from './helpers.js'


describe('two swarms on a local testnet', () => {
  it('authenticate, exchange inventories and transfer a file in pipelined ranges', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const srcA = new MemorySource(await tempDir())
    const data = random(9 * 1024 * 1024 + 123)
    const file = await srcA.add('big-1.0.tar.xz', data)
    const a = await startSwarm(bootstrap, { networkKey, source: srcA, name: 'a', rangeSize: 1024 * 1024 })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b', rangeSize: 1024 * 1024 })

    await until(() => b.find({ name: 'big-1.0.tar.xz' }).length === 1, 20_000, 'inventory at b')
    const [hit] = b.find({ blake2b: file.blake2b.toString('hex') })
    expect(hit!.holders.map((p) => p.name)).toEqual(['a'])
    expect(hit!.entry.sha512.equals(file.sha512)).toBe(true)

    const sink = new BufferSink()
    await b.download(hit!.entry, sink)
    expect(createHash('blake2b512').update(Buffer.concat(sink.chunks)).digest().equals(file.blake2b)).toBe(true)

    // a delta reaches the other side without a reconnect
    const later = await srcA.add('later.tar.gz', random(1000))
    a.announce([later])
    await until(() => b.find({ name: 'later.tar.gz' }).length === 1, 10_000, 'delta at b')
    expect(a.readyPeers().map((p) => p.name)).toEqual(['b'])
    // …and so does a removal, from the digest and the name index alike
    a.announce([], [later.blake2b])
    await until(() => b.find({ name: 'later.tar.gz' }).length === 0, 10_000, 'removal at b')
    expect(b.find({ blake2b: later.blake2b.toString('hex') })).toEqual([])
  })

  it('each side dials a fast-path link of its own, and downloads over it (read in place)', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const srcA = new MemorySource(await tempDir())
    const data = random(3 * 1024 * 1024)
    const file = await srcA.add('linked-1.0.tar.xz', data)
    const a = await startSwarm(bootstrap, { networkKey, source: srcA, name: 'a', rangeSize: 1024 * 1024 })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b', rangeSize: 1024 * 1024 })
    const paths = (s: DistSwarm): DataPath => (s as unknown as { dataPath: DataPath }).dataPath
    const [keyA, keyB] = [a, b].map((s) => s.publicKey.toString('hex')) as [string, string]
    await until(() => paths(a).linksTo(keyB).length === 2 && paths(b).linksTo(keyA).length === 2, 20_000, 'two links between a and b')
    // The link each sends its requests on is the one it dialled.
    expect([paths(a).link(keyB)!.initiator, paths(b).link(keyA)!.initiator]).toEqual([true, true])
    expect(a.pathTo(keyB)).toBe('tcp')

    const [hit] = b.find({ blake2b: file.blake2b.toString('hex') })
    const sink = new BufferSink()
    const before = paths(b).link(keyA)!.bytesReceived
    await b.download(hit!.entry, sink)
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true)
    expect(paths(b).link(keyA)!.bytesReceived - before).toBeGreaterThanOrEqual(data.length)
  })

  it('stops at a failing sink with its own error, instead of trying the next holder', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const data = random(2 * 1024 * 1024)
    for (const name of ['a', 'c']) await startSwarm(bootstrap, { networkKey, source: await (async () => { const src = new MemorySource(await tempDir()); await src.add('f.tar', data); return src })(), name })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b' })
    await until(() => b.find({ name: 'f.tar' })[0]?.holders.length === 2, 20_000, 'both holders at b')
    let writes = 0
    const failing: Sink = {
      written: 0,
      async write () {
        writes++
        throw Object.assign(new Error('the disk said no'), { code: 'ERR_TEST_SINK' })
      }
    }
    await expect(b.download(b.find({ name: 'f.tar' })[0]!.entry, failing)).rejects.toMatchObject({ code: 'ERR_TEST_SINK' })
    expect(writes).toBe(1)
  })

  it('answers a file no peer has with ERR_NOT_FOUND at once', async () => {
    const bootstrap = await testnet()
    const b = await startSwarm(bootstrap, { source: new MemorySource(await tempDir()) })
    const entry = { name: 'x', size: 1, blake2b: random(64), sha512: Buffer.alloc(0) }
    await expect(b.download(entry, new BufferSink())).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
  })
})

describe('hostile peers', () => {
  async function victim () {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const source = new MemorySource(await tempDir())
    await source.add('secret-inventory.tar.gz', random(100))
    const agent = await startSwarm(bootstrap, { networkKey, source, name: 'victim' })
    return { bootstrap, networkKey, agent, topic: topicOf(networkKey) }
  }

  it('drops a peer with a wrong membership proof before it sees any inventory', async () => {
    const { bootstrap, agent, topic } = await victim()
    const raw = await rawPeer(bootstrap, topic)
    rawHello(raw.conn, generateNetworkKey())
    await until(raw.isClosed, 10_000, 'victim to close')
    expect(raw.received.map((m) => m.type)).toEqual(['hello', 'error'])
    expect(raw.received[1]).toMatchObject({ type: 'error', code: 'AUTH_FAILED' })
    expect(agent.readyPeers()).toEqual([])
  })

  it('drops a peer that sends a request before hello', async () => {
    const { bootstrap, topic } = await victim()
    const raw = await rawPeer(bootstrap, topic)
    raw.conn.write(encodeMessage({ type: 'request', id: 1, blake2b: random(64), offset: 0, length: 10 }))
    await until(raw.isClosed, 10_000, 'victim to close')
    expect(raw.received.some((m) => m.type === 'inventory' || m.type === 'data')).toBe(false)
  })

  it('answers an unknown message type with UNKNOWN_TYPE and keeps the connection', async () => {
    const { bootstrap, networkKey, agent, topic } = await victim()
    const raw = await rawPeer(bootstrap, topic)
    rawHello(raw.conn, networkKey)
    await until(() => raw.received.some((m) => m.type === 'inventory'), 10_000, 'inventory')
    raw.conn.write(encodeFrame(Buffer.from([15 << 3, 1]))) // field 15: a future message type
    await until(() => raw.received.some((m) => m.type === 'error'), 10_000, 'error reply')
    expect(raw.received.find((m) => m.type === 'error')).toMatchObject({ code: 'UNKNOWN_TYPE' })
    expect(raw.isClosed()).toBe(false)
    expect(agent.readyPeers()).toHaveLength(1)
  })

  it.each([
    ['an oversized frame header', () => { const h = Buffer.alloc(4); h.writeUInt32BE(MAX_FRAME_SIZE + 1); return h }],
    ['malformed protobuf', () => encodeFrame(Buffer.from([3 << 3 | 2, 100, 1]))],
    ['a path-like file name', () => {
      const frame = encodeMessage({
        type: 'inventory', reset: true, removed: [],
        added: [{ name: 'safe.tar.gz', size: 1, blake2b: random(64), sha512: Buffer.alloc(0) }]
      })
      // same length as "safe.tar.gz" so the frame stays well formed
      return Buffer.from(frame.toString('latin1').replace('safe.tar.gz', '../../etc/p'), 'latin1')
    }]
  ])('drops a member that sends %s, and keeps serving others', async (_, bytes) => {
    const { bootstrap, networkKey, agent, topic } = await victim()
    const raw = await rawPeer(bootstrap, topic)
    rawHello(raw.conn, networkKey)
    await until(() => agent.readyPeers().length === 1, 10_000, 'raw peer ready')
    raw.conn.write(bytes())
    await until(raw.isClosed, 10_000, 'victim to close')
    expect(raw.received.at(-1)).toMatchObject({ type: 'error', code: 'BAD_MESSAGE' })
    expect(agent.readyPeers()).toEqual([])

    // an honest member still gets served
    const honest = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()) })
    await until(() => honest.find({ name: 'secret-inventory.tar.gz' }).length === 1, 20_000, 'honest inventory')
    const sink = new BufferSink()
    await honest.download(honest.find({ name: 'secret-inventory.tar.gz' })[0]!.entry, sink)
    expect(sink.written).toBe(100)
  })
})


describe('fast data path', () => {
  async function pair (dataPortB: number | null) {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const srcA = new MemorySource(await tempDir())
    const file = await srcA.add('big.tar.xz', random(12 * 1024 * 1024 + 5))
    const a = await startSwarm(bootstrap, { networkKey, source: srcA, name: 'a' })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b', dataPort: dataPortB })
    await until(() => b.find({ name: 'big.tar.xz' }).length === 1, 20_000, 'inventory at b')
    return { a, b, file, networkKey }
  }

  it('moves the bytes over an authenticated TCP link when both sides have one', async () => {
    const { a, b, file } = await pair(0)
    const aKey = a.publicKey.toString('hex')
    await until(() => b.pathTo(aKey) === 'tcp', 10_000, 'the data link')
    const sink = new BufferSink()
    await b.download(b.find({ blake2b: file.blake2b.toString('hex') })[0]!.entry, sink)
    expect(createHash('blake2b512').update(Buffer.concat(sink.chunks)).digest().equals(file.blake2b)).toBe(true)
    // the control connection carried the hello and inventory, not the file
    expect(b.readyPeers()[0]!.bytesReceived).toBeLessThan(64 * 1024)
  })

  it('stays on hyperswarm when one side has the fast path off', async () => {
    const { a, b, file } = await pair(null)
    expect(b.dataPort).toBeNull()
    const sink = new BufferSink()
    await b.download(b.find({ blake2b: file.blake2b.toString('hex') })[0]!.entry, sink)
    expect(sink.written).toBe(file.size)
    expect(b.pathTo(a.publicKey.toString('hex'))).toBe('hyperswarm')
  })

  it('refuses a fast-path link from a key that is no connected member, even one that knows the network key', async () => {
    const { a, networkKey } = await pair(0)
    const NoiseSecretStream = (await import('@hyperswarm/secret-stream')).default
    const { connect } = await import('node:net')
    const socket = connect({ host: '127.0.0.1', port: a.dataPort! })
    const stranger = new NoiseSecretStream(true, socket, { keyPair: createKeyPair() })
    stranger.on('error', () => {})
    expect(await stranger.opened).toBe(true) // the Noise handshake itself completes…
    const received: Message[] = []
    const decoder = new FrameDecoder()
    let closed = false
    stranger.on('data', (d: Buffer) => { for (const f of decoder.push(d)) received.push(decodeMessage(f)) })
    stranger.on('close', () => { closed = true })
    stranger.write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'stranger', dataPort: 0, dataOnly: true, seeder: false,
      proof: membershipProof(networkKey, stranger.handshakeHash, stranger.publicKey)
    }))
    await until(() => closed, 10_000, 'the stranger to be cut off')
    expect(received.map((m) => m.type)).toEqual(['hello']) // …its link is refused: no inventory, no data
    expect(a.readyPeers().map((p) => p.name)).toEqual(['b'])
  })
})

describe('static peers', () => {
  it('connect directly over TCP, with no bootstrap node and no DHT, and transfer', async () => {
    const networkKey = generateNetworkKey()
    const srcA = new MemorySource(await tempDir())
    const file = await srcA.add('static-1.0.tar.gz', random(3 * 1024 * 1024))
    const a = await startSwarm([], { networkKey, source: srcA, name: 'a' })
    expect(a.address()).toBeNull() // no DHT at all
    const b = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'b', staticPeers: [{ host: '127.0.0.1', port: a.dataPort! }] })
    await until(() => b.find({ name: 'static-1.0.tar.gz' }).length === 1, 10_000, 'inventory at b')
    expect(b.pathTo(a.publicKey.toString('hex'))).toBe('tcp')
    const sink = new BufferSink()
    await b.download(b.find({ name: 'static-1.0.tar.gz' })[0]!.entry, sink)
    expect(createHash('blake2b512').update(Buffer.concat(sink.chunks)).digest().equals(file.blake2b)).toBe(true)
    // a sees b too, and a delta travels back
    await until(() => a.readyPeers().length === 1, 5000, 'b at a')
  })

  it('refuses to start with no bootstrap node, no static peer and no data port', async () => {
    await expect(startSwarm([], { source: new MemorySource(await tempDir()), dataPort: null })).rejects.toMatchObject({ code: 'ERR_NO_WAY_IN' })
  })
})
