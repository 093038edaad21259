// Issue 17: a member cut off for an offence (a budget, a protocol violation)
// may not reconnect at once and start over: it is refused for a cool-off
// that grows with each repeat offence, up to a bound; honest peers never
// meet it.
import { describe, expect, it, onTestFinished } from 'vitest'
import { connect } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { decodeMessage, encodeMessage, FrameDecoder, PROTOCOL_VERSION, type Message } from '@distswarm/protocol'
import { CoolOff, isOffence } from '../src/cooloff.js'
import { SwarmError } from '../src/errors.js'
import { createKeyPair, generateNetworkKey, membershipProof, type KeyPair } from '../src/index.js'
import { captureLogger, MemorySource, startSwarm, tempDir, until } from './helpers.js'

describe('CoolOff', () => {
  it('doubles with each repeat offence up to the bound, and forgets a key that kept quiet', () => {
    let now = 1_000_000
    const c = new CoolOff({ baseMs: 1000, maxMs: 5000, forgetMs: 60_000, now: () => now })
    expect(c.remaining('a')).toBe(0)
    expect(c.offend('a')).toEqual({ ms: 1000, offences: 1 })
    expect(c.remaining('a')).toBe(1000)
    expect(c.remaining('b')).toBe(0)
    now += 1000
    expect(c.remaining('a')).toBe(0)
    expect(c.offend('a')).toEqual({ ms: 2000, offences: 2 })
    expect(c.offend('a')).toEqual({ ms: 4000, offences: 3 })
    expect(c.offend('a')).toEqual({ ms: 5000, offences: 4 })
    for (let i = 0; i < 100; i++) c.offend('a')
    expect(c.remaining('a')).toBe(5000)
    // Quiet past the cool-off and forgetMs: a new offence is a first one again.
    now += 5000 + 60_000
    expect(c.remaining('a')).toBe(0)
    expect(c.size).toBe(0)
    expect(c.offend('a')).toEqual({ ms: 1000, offences: 1 })
  })

  it('remembers a bounded number of keys, forgetting the oldest offence first', () => {
    const c = new CoolOff({ baseMs: 1000, maxMs: 5000, forgetMs: 60_000 })
    for (let i = 0; i < 10_050; i++) c.offend(`k${i}`)
    expect(c.size).toBe(10_000)
    expect(c.remaining('k0')).toBe(0)
    expect(c.remaining('k10049')).toBeGreaterThan(0)
  })

  it('counts budgets and protocol violations as offences, not a dead or closed link', () => {
    expect(isOffence(SwarmError.OVER_BUDGET('requests', 1))).toBe(true)
    expect(isOffence(SwarmError.PROTOCOL_VIOLATION('second hello'))).toBe(true)
    expect(isOffence(SwarmError.PEER_DEAD(3000))).toBe(false)
    expect(isOffence(SwarmError.PEER_CLOSED())).toBe(false)
    expect(isOffence(SwarmError.TIMEOUT('hello', 5000))).toBe(false)
    expect(isOffence(null)).toBe(false)
  })
})

/**
 * A member over a real secret stream (TCP, the network key's proof) that
 * sends its hello and then what the test says. `accepted` resolves true when
 * the agent's own hello arrives (it took the connection), false when the
 * connection closes first (it was refused).
 */
async function member (port: number, networkKey: Buffer, keyPair: KeyPair) {
  const socket = connect({ host: '127.0.0.1', port })
  const stream = new NoiseSecretStream(true, socket, { keyPair })
  onTestFinished(() => { stream.destroy() })
  stream.on('error', () => {})
  const received: Message[] = []
  const decoder = new FrameDecoder()
  let closed = false
  const accepted = new Promise<boolean>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const msg = decodeMessage(frame)
        received.push(msg)
        if (msg.type === 'hello') resolve(true)
      }
    })
    stream.on('close', () => { closed = true; resolve(false) })
  })
  if (await stream.opened) {
    stream.write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey), name: 'offender', dataPort: 0, dataOnly: false, seeder: false
    }))
  }
  return {
    accepted,
    received,
    get closed () { return closed },
    /** A second hello: a protocol violation, cut off at once. */
    offend: () => stream.write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, proof: Buffer.alloc(32), name: 'offender', dataPort: 0, dataOnly: false, seeder: false
    }))
  }
}

describe('a member cut off for an offence (issue 17)', () => {
  it('is refused for a cool-off that doubles at the next offence, logged with the reason; the honest peer stays', { timeout: 60_000 }, async () => {
    const networkKey = generateNetworkKey()
    const log = captureLogger()
    const source = new MemorySource(await tempDir())
    const file = await source.add('honest-1.tar.xz', Buffer.alloc(4096, 7))
    const limits = { coolOffMs: 1500, maxCoolOffMs: 60_000 }
    const seeder = await startSwarm([], { networkKey, source, name: 'seeder', logger: log, limits })
    const honest = await startSwarm([], {
      networkKey, source: new MemorySource(await tempDir()), name: 'honest', limits, staticPeers: [{ host: '127.0.0.1', port: seeder.dataPort! }]
    })
    await until(() => honest.find({ blake2b: file.blake2b.toString('hex') }).length === 1, 30_000, 'the honest peer to see the file')
    const keyPair = createKeyPair()
    const cooling = (): Array<Record<string, unknown>> => log.lines.filter((l) => l.event === 'peer.cooling-off').map((l) => ({ level: l.level, ...l.fields }))

    // First offence: cut off, and refused for coolOffMs.
    const first = await member(seeder.dataPort!, networkKey, keyPair)
    expect(await first.accepted).toBe(true)
    first.offend()
    await until(() => first.closed, 10_000, 'the offender to be cut off')
    expect(cooling()).toEqual([expect.objectContaining({ level: 'warn', code: 'ERR_PROTOCOL_VIOLATION', why: expect.stringMatching(/second hello/) as unknown, ms: 1500, offences: 1 })])

    // At once again: refused before any hello, with a debug line saying why.
    const again = await member(seeder.dataPort!, networkKey, keyPair)
    expect(await again.accepted).toBe(false)
    expect(again.received).toEqual([])
    expect(log.lines.some((l) => l.event === 'peer.refused' && l.fields.key === keyPair.publicKey.toString('hex').slice(0, 16))).toBe(true)
    expect(seeder.readyPeers().map((p) => p.name)).toEqual(['honest'])

    // Once the cool-off ended it is taken back; its next offence costs twice as long.
    let back: Awaited<ReturnType<typeof member>> | null = null
    for (let i = 0; i < 200 && back === null; i++) {
      const m = await member(seeder.dataPort!, networkKey, keyPair)
      if (await m.accepted) back = m
      else await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(back).not.toBeNull()
    back!.offend()
    await until(() => back!.closed, 10_000, 'the offender to be cut off again')
    expect(cooling()[1]).toMatchObject({ code: 'ERR_PROTOCOL_VIOLATION', ms: 3000, offences: 2 })

    // The honest peer never met any of it.
    expect(seeder.readyPeers().map((p) => p.name)).toEqual(['honest'])
    expect(honest.readyPeers().map((p) => p.name)).toEqual(['seeder'])
    expect(log.lines.filter((l) => l.event === 'peer.cooling-off')).toHaveLength(2)
  })
})
