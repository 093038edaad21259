import { describe, expect, it, onTestFinished } from 'vitest'
import { connect, createServer, type Socket } from 'node:net'
import { DistSwarm, createKeyPair, generateNetworkKey, type Peer, type SwarmInit } from '../src/index.js'
import { DataPath } from '../src/datapath.js'
import { Transfer } from '../src/transfer.js'
import { BufferSink, MemorySource, tempDir, testnet, until } from './helpers.js'

const MiB = 1024 * 1024

async function init (over: Partial<SwarmInit> = {}): Promise<SwarmInit> {
  return { networkKey: generateNetworkKey(), keyPair: createKeyPair(), bootstrap: [], host: '127.0.0.1', source: new MemorySource(await tempDir()), ...over }
}

/** Whether `p` settles within `ms` (a bound on the test, not a figure it measures). */
async function settles (p: Promise<unknown>, ms = 5000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  const done = p.then(() => true, () => true)
  const settled = await Promise.race([done, late])
  clearTimeout(timer)
  return settled
}

describe('options are refused at construction', () => {
  const entry = { name: 'f', size: 10 * MiB, blake2b: Buffer.alloc(64), sha512: Buffer.alloc(0) }
  const deps = { holders: (): Peer[] => [], via: (p: Peer): Peer => p }

  it.each([
    ['maxAhead', { maxAhead: 0 }],
    ['window', { window: 0 }],
    ['rangeSize', { rangeSize: 64 * MiB + 1 }],
    ['rangeSize', { rangeSize: 1000 }],
    ['hedgeAfterMs', { hedgeAfterMs: -1 }]
  ])('%s out of range: ERR_INVALID_OPTION from Transfer and from DistSwarm', async (name, opts) => {
    expect(() => new Transfer(entry, new BufferSink(), deps, opts)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining(name) }))
    const i = await init({ dataPort: 0, ...opts })
    expect(() => new DistSwarm(i)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining(name) }))
  })

  it.each([
    ['maxPeers', { maxPeers: 0 }],
    ['port', { port: 70000 }],
    ['dataPort', { dataPort: -1 }],
    ['staticPeers', { staticPeers: [{ host: '127.0.0.1', port: 0 }] }],
    ['limits.deadAfterMs', { limits: { deadAfterMs: 10 } }],
    ['limits.requestTimeoutMs', { limits: { requestTimeoutMs: 0 } }]
  ])('%s out of range: ERR_INVALID_OPTION', async (name, opts) => {
    const i = await init(opts as Partial<SwarmInit>)
    expect(() => new DistSwarm(i)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining(name) }))
  })

  it('DataPath refuses a maxHandshaking of 0', () => {
    expect(() => new DataPath({ keyPair: createKeyPair(), onStream: () => {}, isMember: () => false, maxHandshaking: 0 }))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
  })
})

describe('DistSwarm lifecycle', () => {
  it('starts nothing in its constructor; start() and stop() are idempotent; no start after stop', async () => {
    const bootstrap = await testnet()
    const swarm = new DistSwarm(await init({ bootstrap }))
    onTestFinished(() => swarm.stop())
    expect(swarm.address()).toBeNull()
    expect(swarm.dataPort).toBeNull()
    const first = swarm.start()
    expect(swarm.start()).toBe(first)
    await first
    await swarm.start()
    expect(swarm.address()).not.toBeNull()
    const port = swarm.dataPort!
    await Promise.all([swarm.stop(), swarm.stop()])
    await swarm.stop()
    await expect(swarm.start()).rejects.toMatchObject({ code: 'ERR_DESTROYED' })
    // the data port is closed
    const refused = await new Promise<string>((resolve) => connect({ host: '127.0.0.1', port }).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')).on('connect', () => resolve('connected')))
    expect(refused).toBe('ECONNREFUSED')
  })

  it('a start that fails (data port taken) stops what it started, and stays stopped', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()))
    onTestFinished(() => new Promise<void>((resolve) => taken.close(() => resolve())))
    const port = (taken.address() as { port: number }).port
    const swarm = new DistSwarm(await init({ dataPort: port }))
    await expect(swarm.start()).rejects.toMatchObject({ code: 'EADDRINUSE' })
    await expect(swarm.start()).rejects.toMatchObject({ code: 'ERR_DESTROYED' })
    await swarm.stop()
  })

  it('stop() during start() ends the start and closes the data port it had opened', async () => {
    // A bootstrap node nobody runs: joining waits on the DHT for seconds.
    const swarm = new DistSwarm(await init({ bootstrap: [{ host: '127.0.0.1', port: 9 }] }))
    const starting = swarm.start()
    await until(() => swarm.dataPort !== null && swarm.dataPort > 0, 10_000, 'the data port')
    const port = swarm.dataPort!
    await swarm.stop()
    await expect(starting).rejects.toMatchObject({ code: 'ERR_DESTROYED' })
    const refused = await new Promise<string>((resolve) => connect({ host: '127.0.0.1', port }).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')).on('connect', () => resolve('connected')))
    expect(refused).toBe('ECONNREFUSED')
  })
})

describe('DataPath.dial', () => {
  it('settles when the connection is refused on our side (too many in their handshake), so the redial loop goes on', async () => {
    const dp = new DataPath({ keyPair: createKeyPair(), onStream: () => {}, isMember: () => false, maxHandshaking: 1 })
    onTestFinished(() => dp.close())
    const port = await dp.listen('127.0.0.1', 0)
    // An idle connection that never does its handshake takes the only slot.
    const idle: Socket = connect({ host: '127.0.0.1', port })
    idle.on('error', () => {})
    onTestFinished(() => { idle.destroy() })
    await until(() => (dp as unknown as { handshaking: number }).handshaking === 1, 5000, 'the idle connection')
    const dial = dp.dial({ host: '127.0.0.1', port })
    expect(await settles(dial)).toBe(true)
    await expect(dial).rejects.toMatchObject({ code: 'ERR_PEER_CLOSED' })
  })
})
