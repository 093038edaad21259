// Issue 17 ("a member that floods") x issue 14 (memory): the secret stream's
// messages off an accepted socket, gathered in reused buffers (MessageSocket).
import { describe, expect, it, onTestFinished } from 'vitest'
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { encodeMessage, MAX_FRAME_SIZE, PROTOCOL_VERSION, type FileEntry } from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof } from '../src/index.js'
import { MessageSocket, messageBuffers, recycleMessage } from '../src/reassembly.js'
import { MemorySource, startSwarm, tempDir, until } from './helpers.js'

/** Messages as the secret stream frames them: a 3-byte little-endian length, then the bytes. */
function framed (sizes: number[]): Buffer {
  return Buffer.concat(sizes.map((n) => {
    const m = randomBytes(3 + n)
    m.writeUIntLE(n, 0, 3)
    return m
  }))
}

/** The lengths of the whole messages `chunk` holds, or null when it ends inside one. */
function wholeMessages (chunk: Buffer): number[] | null {
  const sizes: number[] = []
  for (let pos = 0; pos < chunk.byteLength;) {
    if (chunk.byteLength - pos < 3) return null
    const n = chunk.readUIntLE(pos, 3)
    pos += 3 + n
    if (pos > chunk.byteLength) return null
    sizes.push(n)
  }
  return sizes
}

/** A MessageSocket over a stand-in for the socket; `feed` is what the socket reads. */
function messageSocket () {
  const socket = new EventEmitter()
  const ms = new MessageSocket(socket as unknown as Socket)
  const got: Buffer[] = []
  ms.on('data', (chunk: Buffer) => got.push(chunk))
  return { got, feed: (chunk: Buffer) => socket.emit('data', chunk) }
}

describe('MessageSocket', () => {
  it('hands on whole messages only, the same bytes in order, however the reads split them (a length, a message, or many)', () => {
    const sizes = [0, 1, 2, 17, 100, 5000, 70_000, 200_000, 3, 0, 65_533, MAX_FRAME_SIZE + 64]
    const stream = framed(sizes)
    for (const cuts of [[1], [2], [3], [4], [7], [1000], [65_536], [1, 2, 3, 65_536, 5], [stream.byteLength]]) {
      const { got, feed } = messageSocket()
      for (let pos = 0, i = 0; pos < stream.byteLength; i++) {
        const n = cuts[i % cuts.length]!
        feed(Buffer.from(stream.subarray(pos, pos + n)))
        pos += n
      }
      expect(Buffer.concat(got).equals(stream)).toBe(true)
      expect(got.flatMap((c) => wholeMessages(c) ?? [NaN])).toEqual(sizes)
    }
  })

  it('gathers a message that spans reads in a buffer it reuses once handed back', () => {
    const { got, feed } = messageSocket()
    const before = messageBuffers()
    for (let i = 0; i < 20; i++) {
      const message = framed([300_000])
      feed(message.subarray(0, 65_536))
      feed(message.subarray(65_536))
      expect(got.at(-1)!.equals(message)).toBe(true)
      recycleMessage(got.at(-1)!.subarray(4)) // a view of it, as the receiver holds it
    }
    const after = messageBuffers()
    expect(after.taken - before.taken).toBe(20)
    expect(after.made - before.made).toBeLessThanOrEqual(1) // none when a buffer was free already
  })
})

/** `n` made-up entries from `from`: typical names, digests no one else has. */
function batch (from: number, n: number): FileEntry[] {
  return Array.from({ length: n }, (_, j) => {
    const blake2b = Buffer.alloc(64)
    blake2b.writeUInt32BE(from + j, 60)
    return { name: `legacy-pkg-${from + j}.tar.xz`, size: 1000 + j, blake2b, sha512: Buffer.alloc(0) }
  })
}

describe('an inventory over the secret stream to our data port (an agent from before the data link)', () => {
  it('is absorbed whole, its messages gathered in a few reused buffers, not one made for each', async () => {
    const networkKey = generateNetworkKey()
    const swarm = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'agent' })
    const stream = new NoiseSecretStream(true, connect({ host: '127.0.0.1', port: swarm.dataPort! }), { keyPair: createKeyPair() })
    onTestFinished(() => { stream.destroy() })
    stream.on('error', () => {})
    stream.on('data', () => {})
    expect(await stream.opened).toBe(true)
    const write = (frame: Buffer): Promise<void> => stream.write(frame) ? Promise.resolve() : new Promise((resolve) => stream.once('drain', resolve))
    await write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey), name: 'legacy', dataPort: 0, dataOnly: false, seeder: false
    }))
    const before = messageBuffers()
    const FRAMES = 24
    const PER_FRAME = 800
    // Each frame ~85 KiB (a socket read is at most 64 KiB): every one spans reads.
    for (let i = 0; i < FRAMES; i++) await write(encodeMessage({ type: 'inventory', reset: i === 0, added: batch(i * PER_FRAME, PER_FRAME), removed: [] }))
    await until(() => swarm.readyPeers().some((p) => p.name === 'legacy' && p.files.size === FRAMES * PER_FRAME), 30_000, 'the inventory')
    expect(swarm.find({ name: `legacy-pkg-${FRAMES * PER_FRAME - 1}.tar.xz` })).toHaveLength(1)
    // Every frame was gathered (it spans reads), in one buffer per message under way at once, not one made for each.
    const after = messageBuffers()
    expect(after.taken - before.taken).toBeGreaterThanOrEqual(FRAMES)
    expect(after.made - before.made).toBeLessThanOrEqual(3)
  })
})
