import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import Hyperswarm from 'hyperswarm'
import HyperDHT from 'hyperdht'
import { onTestFinished } from 'vitest'
import { decodeMessage, encodeMessage, FrameDecoder, PROTOCOL_VERSION, type Message } from '@distswarm/protocol'
import { generateNetworkKey, membershipProof, sourcesOf, topicOf, type DistSwarm, type HostPort, type LocalFile, type SecretStream } from '../src/index.js'
import { BufferSink, MemorySource, random, startSwarm, tempDir, testnet, until } from './helpers.js'

const MiB = 1024 * 1024

/** `n` swarms holding the same file, and one that holds nothing. */
async function holders (n: number, size: number, opts: { dataPort?: number | null } = {}) {
  const bootstrap = await testnet()
  const networkKey = generateNetworkKey()
  const data = random(size)
  let file: LocalFile | undefined
  const seeders: DistSwarm[] = []
  for (let i = 0; i < n; i++) {
    const source = new MemorySource(await tempDir())
    file = await source.add('multi-1.0.tar.xz', data)
    seeders.push(await startSwarm(bootstrap, { networkKey, source, name: `s${i}`, dataPort: opts.dataPort }))
  }
  const receiver = await startSwarm(bootstrap, {
    networkKey, source: new MemorySource(await tempDir()), name: 'r', rangeSize: MiB, hedgeAfterMs: 300, dataPort: opts.dataPort,
    // Long, so a test that finishes did so by hedging or failover, not by a request timing out.
    limits: { requestTimeoutMs: 10 * 60_000 }
  })
  return { bootstrap, networkKey, data, file: file!, seeders, receiver }
}

const digest = (b: Buffer): string => createHash('blake2b512').update(b).digest('hex')

describe('downloads from many sources', () => {
  it.each([['fast path', 0], ['hyperswarm only', null]] as const)('spreads the pieces of one file over three seeders (%s)', async (_, dataPort) => {
    const { data, file, seeders, receiver } = await holders(3, 24 * MiB + 5, { dataPort })
    await until(() => receiver.find({ blake2b: file.blake2b.toString('hex') })[0]?.holders.length === 3, 20_000, 'three holders')
    const sink = new BufferSink()
    const pieces = await receiver.download(receiver.find({ name: 'multi-1.0.tar.xz' })[0]!.entry, sink)
    expect(digest(sink.bytes)).toBe(digest(data))
    expect(sourcesOf(pieces).sort()).toEqual(seeders.map((s) => s.publicKey.toString('hex')).sort())
    // Every byte is accounted for, once, in order.
    expect(pieces.map((p) => p.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i * MiB))
    expect(pieces.reduce((n, p) => n + p.length, 0)).toBe(data.length)
  })

  it('asks a seeder first when several peers hold the file', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const data = random(8 * MiB)
    const start = async (name: string, seeder: boolean): Promise<DistSwarm> => {
      const source = new MemorySource(await tempDir())
      await source.add('multi-1.0.tar.xz', data)
      return await startSwarm(bootstrap, { networkKey, source, name, seeder })
    }
    // The plain holder is met first; the seeder still gets the first piece.
    const plain = await start('plain', false)
    const receiver = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'r', rangeSize: MiB, window: 1 })
    await until(() => receiver.find({ name: 'multi-1.0.tar.xz' })[0]?.holders.length === 1, 20_000, 'the plain holder')
    const seeder = await start('seeder', true)
    await until(() => receiver.find({ name: 'multi-1.0.tar.xz' })[0]?.holders.length === 2, 20_000, 'both holders')
    const pieces = await receiver.download(receiver.find({ name: 'multi-1.0.tar.xz' })[0]!.entry, new BufferSink())
    expect(pieces[0]!.source).toBe(seeder.publicKey.toString('hex'))
    expect(sourcesOf(pieces)).toContain(plain.publicKey.toString('hex'))
  })

  it('completes with identical bytes when a seeder leaves mid-transfer', async () => {
    const { data, file, seeders, receiver } = await holders(3, 32 * MiB)
    await until(() => receiver.find({ blake2b: file.blake2b.toString('hex') })[0]?.holders.length === 3, 20_000, 'three holders')
    const sink = new BufferSink()
    let killed = false
    sink.onWrite = () => {
      if (!killed && sink.written >= 4 * MiB) {
        killed = true
        void seeders[1]!.stop()
      }
    }
    const pieces = await receiver.download(receiver.find({ name: 'multi-1.0.tar.xz' })[0]!.entry, sink)
    expect(killed).toBe(true)
    expect(digest(sink.bytes)).toBe(digest(data))
    expect(pieces.reduce((n, p) => n + p.length, 0)).toBe(data.length)
  })

  it('hedges a piece a source stops sending mid-range: another source answers it, and the download ends without waiting for a timeout', async () => {
    const { bootstrap, networkKey, data, file, receiver } = await holders(1, 12 * MiB)
    // A member that advertises the file, sends the first 64 KiB of each range asked of it, and stops.
    const silent = await silentHolder(bootstrap, networkKey, file, data)
    await until(() => receiver.find({ blake2b: file.blake2b.toString('hex') })[0]?.holders.length === 2, 20_000, 'both holders')
    const sink = new BufferSink()
    const pieces = await receiver.download(receiver.find({ name: 'multi-1.0.tar.xz' })[0]!.entry, sink)
    expect(digest(sink.bytes)).toBe(digest(data))
    expect(silent.requests()).toBeGreaterThan(0)
    expect(sourcesOf(pieces)).toHaveLength(1)
  }, 60_000)

  it('fails with ERR_ALL_SOURCES_FAILED when its only source leaves, keeping what was written', async () => {
    const { file, seeders, receiver } = await holders(1, 16 * MiB)
    await until(() => receiver.find({ blake2b: file.blake2b.toString('hex') }).length === 1, 20_000, 'holder')
    const sink = new BufferSink()
    sink.onWrite = () => { if (sink.written >= 2 * MiB) void seeders[0]!.stop() }
    await expect(receiver.download(receiver.find({ name: 'multi-1.0.tar.xz' })[0]!.entry, sink)).rejects.toMatchObject({ code: 'ERR_ALL_SOURCES_FAILED' })
    expect(sink.written).toBeGreaterThanOrEqual(2 * MiB)
    expect(sink.written % MiB).toBe(0)
  })
})

/** A real member (valid proof, real secret stream) that advertises `file` and answers each request with its first 64 KiB, then nothing. */
async function silentHolder (bootstrap: HostPort[], networkKey: Buffer, file: LocalFile, data: Buffer) {
  const dht = new HyperDHT({ bootstrap, host: '127.0.0.1' })
  const swarm = new Hyperswarm({ dht })
  onTestFinished(async () => { await swarm.destroy(); await dht.destroy() })
  let requests = 0
  swarm.on('connection', (conn: SecretStream) => {
    const decoder = new FrameDecoder()
    conn.on('error', () => {})
    conn.on('data', (chunk) => {
      for (const f of decoder.push(chunk)) {
        const m: Message = decodeMessage(f)
        if (m.type !== 'request') continue
        requests++
        conn.write(encodeMessage({ type: 'data', id: m.id, offset: m.offset, bytes: data.subarray(m.offset, m.offset + Math.min(m.length, 64 * 1024)) }))
      }
    })
    conn.write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'silent', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, conn.handshakeHash, conn.publicKey)
    }))
    conn.write(encodeMessage({ type: 'inventory', reset: true, added: [{ name: file.name, size: file.size, blake2b: file.blake2b, sha512: file.sha512 }], removed: [] }))
  })
  swarm.join(topicOf(networkKey), { server: true, client: true })
  return { requests: () => requests }
}
