import { describe, expect, it } from 'vitest'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { encodeMessage } from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof } from '../src/index.js'
import { captureLogger, closedPort, MemorySource, startSwarm, tempDir, until, type LogLine } from './helpers.js'

const warned = (lines: LogLine[], event: string): LogLine[] => lines.filter((l) => l.level === 'warn' && l.event === event)

describe('mistakes are warnings naming the address and the likely cause', () => {
  it('a wrong network key: both sides warn, once a minute per address, and list it in problems()', async () => {
    const la = captureLogger()
    const lb = captureLogger()
    const a = await startSwarm([], { networkKey: generateNetworkKey(), source: new MemorySource(await tempDir()), name: 'a', logger: la })
    const to = `127.0.0.1:${a.dataPort!}`
    const b = await startSwarm([], {
      networkKey: generateNetworkKey(), source: new MemorySource(await tempDir()), name: 'b', dataPort: null, logger: lb, staticPeers: [{ host: '127.0.0.1', port: a.dataPort! }]
    })
    await until(() => warned(la.lines, 'peer.wrong-network-key').length > 0 && warned(lb.lines, 'peer.wrong-network-key').length > 0, 15_000, 'both warnings')
    // The dialling side names the address it dialled; the other, the host that came in.
    expect(warned(lb.lines, 'peer.wrong-network-key')[0]!.fields).toMatchObject({ address: to, cause: expect.stringContaining('network key') })
    expect(warned(la.lines, 'peer.wrong-network-key')[0]!.fields).toMatchObject({ address: '127.0.0.1', cause: expect.stringContaining('network key') })
    // b dials again after a backoff: seen twice, said once.
    await until(() => (b.problems()[0]?.count ?? 0) >= 2, 15_000, 'a second attempt')
    expect(warned(lb.lines, 'peer.wrong-network-key')).toHaveLength(1)
    expect(b.problems()[0]).toMatchObject({ event: 'peer.wrong-network-key', address: to })
    expect(a.problems()[0]).toMatchObject({ event: 'peer.wrong-network-key', address: '127.0.0.1' })
    expect(a.readyPeers()).toEqual([])
    expect(b.readyPeers()).toEqual([])
  })

  it('a static peer on a closed port: a warning with the address, and refused as the cause', async () => {
    const port = await closedPort()
    const log = captureLogger()
    const b = await startSwarm([], { source: new MemorySource(await tempDir()), dataPort: null, logger: log, staticPeers: [{ host: '127.0.0.1', port }] })
    await until(() => warned(log.lines, 'static-peer.unreachable').length > 0, 10_000, 'the warning')
    expect(warned(log.lines, 'static-peer.unreachable')[0]!.fields).toMatchObject({ address: `127.0.0.1:${port}`, code: 'ECONNREFUSED', cause: expect.stringContaining('refused') })
    expect(b.problems()).toEqual([expect.objectContaining({ event: 'static-peer.unreachable', address: `127.0.0.1:${port}` })])
  })

  it('a bootstrap node that does not answer: a warning with its address', async () => {
    // A UDP port that was free a moment ago: nothing answers there.
    const sock = createSocket('udp4')
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()))
    const port = sock.address().port
    await new Promise<void>((resolve) => sock.close(() => resolve()))
    const log = captureLogger()
    const s = await startSwarm([{ host: '127.0.0.1', port }], { source: new MemorySource(await tempDir()), logger: log })
    await until(() => warned(log.lines, 'bootstrap.unreachable').length > 0, 30_000, 'the warning')
    expect(warned(log.lines, 'bootstrap.unreachable')[0]!.fields).toMatchObject({ address: `127.0.0.1:${port}`, cause: expect.stringContaining('bootstrap') })
    expect(s.problems()[0]).toMatchObject({ event: 'bootstrap.unreachable', address: `127.0.0.1:${port}` })
  })

  it('a peer of another protocol version: a warning naming its host', async () => {
    const networkKey = generateNetworkKey()
    const log = captureLogger()
    const a = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), logger: log })
    const stream = new NoiseSecretStream(true, connect({ host: '127.0.0.1', port: a.dataPort! }), { keyPair: createKeyPair() })
    stream.on('error', () => {})
    expect(await stream.opened).toBe(true)
    stream.write(encodeMessage({
      type: 'hello', version: 99, name: 'future', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey)
    }))
    await until(() => warned(log.lines, 'peer.incompatible').length > 0, 10_000, 'the warning')
    expect(warned(log.lines, 'peer.incompatible')[0]!.fields).toMatchObject({ address: '127.0.0.1', cause: expect.stringContaining('version') })
    stream.destroy()
  })
})
