import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import type { PeerAddress } from '@distswarm/protocol'
import { generateNetworkKey, type HostPort } from '../src/index.js'
import type { Peer } from '../src/peer.js'
import { BEACON_BYTES, decodeBeacon, encodeBeacon, EPOCH_MS, LanDiscovery, lanKeyOf, lanTag } from '../src/lan.js'
import { addressProblem, Mesh } from '../src/mesh.js'
import { closedPort, MemorySource, startSwarm, tempDir, until } from './helpers.js'
import { replacesConnection, SIMULTANEOUS_MS } from '../src/swarm.js'

const NOW = 1_800_000_000_000
const EPOCH = Math.floor(NOW / EPOCH_MS)

describe('LAN beacon', () => {
  const key = generateNetworkKey()
  const lanKey = lanKeyOf(key)
  const instance = randomBytes(16)

  it('carries a tag of the network key that is neither the key nor the same from one epoch to the next', () => {
    const beacon = encodeBeacon(lanKey, EPOCH, instance, 49738)
    expect(beacon.byteLength).toBe(BEACON_BYTES)
    expect(beacon.includes(key)).toBe(false)
    expect(beacon.includes(key.subarray(0, 8))).toBe(false)
    expect(lanTag(lanKey, EPOCH).equals(lanTag(lanKey, EPOCH + 1))).toBe(false)
    expect(encodeBeacon(lanKey, EPOCH + 1, instance, 49738).subarray(5, 21).equals(beacon.subarray(5, 21))).toBe(false)
    expect(decodeBeacon(lanKey, beacon, NOW)).toEqual({ instance, dataPort: 49738 })
  })

  it('takes the neighbouring epochs (clocks a little apart), not older or newer ones', () => {
    expect(decodeBeacon(lanKey, encodeBeacon(lanKey, EPOCH - 1, instance, 1), NOW)).not.toBeNull()
    expect(decodeBeacon(lanKey, encodeBeacon(lanKey, EPOCH + 1, instance, 1), NOW)).not.toBeNull()
    expect(decodeBeacon(lanKey, encodeBeacon(lanKey, EPOCH - 2, instance, 1), NOW)).toBeNull()
    expect(decodeBeacon(lanKey, encodeBeacon(lanKey, EPOCH + 2, instance, 1), NOW)).toBeNull()
  })

  it("ignores other networks' beacons, malformed packets, a forged port and port 0", () => {
    const beacon = encodeBeacon(lanKey, EPOCH, instance, 49738)
    expect(decodeBeacon(lanKeyOf(generateNetworkKey()), beacon, NOW)).toBeNull()
    for (const bad of [Buffer.alloc(0), beacon.subarray(0, BEACON_BYTES - 1), Buffer.concat([beacon, Buffer.alloc(1)]), randomBytes(BEACON_BYTES)]) {
      expect(decodeBeacon(lanKey, bad, NOW)).toBeNull()
    }
    const forged = Buffer.from(beacon)
    forged.writeUInt16BE(22, 37) // the port, without the key to make its mac
    expect(decodeBeacon(lanKey, forged, NOW)).toBeNull()
    const versioned = Buffer.from(beacon)
    versioned[4] = 2
    expect(decodeBeacon(lanKey, versioned, NOW)).toBeNull()
    expect(decodeBeacon(lanKey, encodeBeacon(lanKey, EPOCH, instance, 0), NOW)).toBeNull()
  })

  it('dials an agent it hears once (the lower instance dials, the higher answers), rate-limits, and never dials itself', () => {
    const dialled: HostPort[] = []
    let connected = false
    let now = NOW
    const lan = new LanDiscovery({ networkKey: key, host: '10.77.0.10', dataPort: 49738, isConnected: () => connected, dial: (to) => dialled.push(to), now: () => now })
    const low = Buffer.alloc(16, 0)
    const high = Buffer.alloc(16, 0xff)
    // Our own beacon, looped back: ignored
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, (lan as unknown as { instance: (e: number) => Buffer }).instance(EPOCH), 49738), '10.77.0.10')).toBe('ignored')
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, low, 49738), '10.77.0.11')).toBe('answer') // it is lower: it dials us
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, high, 49738), '10.77.0.12')).toBe('dial')
    expect(dialled).toEqual([{ host: '10.77.0.12', port: 49738 }])
    now += 60_000
    connected = true
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, high, 49738), '10.77.0.12')).toBe('connected')
    connected = false
    // A loopback source for an agent on the LAN, another network, garbage: ignored
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, high, 49738), '127.0.0.1')).toBe('ignored')
    expect(lan.onPacket(encodeBeacon(lanKeyOf(generateNetworkKey()), EPOCH, high, 49738), '10.77.0.13')).toBe('ignored')
    expect(lan.onPacket(randomBytes(BEACON_BYTES), '10.77.0.13')).toBe('ignored')
    // A flood is cut at the packet rate: at most a burst of 400 looked at
    const outcomes = Array.from({ length: 2000 }, (_, i) => lan.onPacket(encodeBeacon(lanKey, EPOCH, high, 1 + i), '10.77.0.14'))
    expect(outcomes.filter((o) => o === 'dial').length).toBeLessThanOrEqual(400)
    expect(outcomes.filter((o) => o === 'dial').length).toBeGreaterThan(0)
    expect(lan.heard).toBeLessThanOrEqual(405)
  })

  it('on loopback, hears loopback sources only', () => {
    const dialled: HostPort[] = []
    const lan = new LanDiscovery({ networkKey: key, host: '127.0.0.1', dataPort: 49738, isConnected: () => false, dial: (to) => dialled.push(to), now: () => NOW })
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, Buffer.alloc(16, 0xff), 5000), '10.77.0.12')).toBe('ignored')
    expect(lan.onPacket(encodeBeacon(lanKey, EPOCH, Buffer.alloc(16, 0xff), 5000), '127.0.0.1')).toBe('dial')
    expect(dialled).toEqual([{ host: '127.0.0.1', port: 5000 }])
  })
})

describe('peer exchange', () => {
  it('dials only unicast IP literals, loopback only on loopback', () => {
    expect(addressProblem('10.77.0.11', 49738, false)).toBeNull()
    expect(addressProblem('::ffff:10.77.0.11', 49738, false)).toBeNull()
    expect(addressProblem('fe80::1', 49738, false)).toBeNull()
    expect(addressProblem('127.0.0.1', 49738, false)).toMatch(/loopback/)
    expect(addressProblem('::1', 49738, false)).toMatch(/loopback/)
    expect(addressProblem('127.0.0.1', 49738, true)).toBeNull()
    for (const host of ['0.0.0.0', '::', '224.0.0.251', '239.255.77.36', '255.255.255.255', 'ff02::1', 'buildhost', '']) {
      expect(addressProblem(host, 49738, true), host).not.toBeNull()
    }
    expect(addressProblem('10.77.0.11', 0, false)).not.toBeNull()
  })

  it('takes a burst of messages from one member, then ignores it for a while; skips itself, members it has and bad addresses', () => {
    const dialled: HostPort[] = []
    const ours = Buffer.alloc(32, 0) // the lowest key: we dial every one
    const member = { publicKey: Buffer.alloc(32, 9), publicKeyHex: Buffer.alloc(32, 9).toString('hex'), label: 'm', remoteHost: '10.77.0.10', remoteDataPort: 1, state: 'ready' } as unknown as Peer
    const mesh = new Mesh({ publicKey: ours, networkKey: generateNetworkKey(), host: '0.0.0.0', dataPort: () => 49738, members: () => [member], dial: async (to) => { dialled.push(to) }, lan: false })
    const one = (host: string, key: Buffer = randomBytes(32)): PeerAddress[] => [{ publicKey: Buffer.concat([Buffer.from([1]), key.subarray(1)]), host, port: 49738 }]
    mesh.onAddresses(member, [
      { publicKey: ours, host: '10.77.0.20', port: 1 }, // ourselves
      { publicKey: member.publicKey, host: '10.77.0.10', port: 1 }, // connected already
      ...one('127.0.0.1'), ...one('239.1.2.3'), ...one('0.0.0.0'),
      ...one('10.77.0.11')
    ])
    expect(dialled).toEqual([{ host: '10.77.0.11', port: 49738 }])
    mesh.onAddresses(member, one('10.77.0.11')) // told again: not dialled again so soon
    expect(dialled.length).toBe(1)
    for (let i = 0; i < 10; i++) mesh.onAddresses(member, one(`10.77.0.${30 + i}`))
    expect(dialled.length).toBe(3) // the first two messages and 2 more of the burst of 4
    // The higher key of two waits to be dialled: the two never dial each other at once
    const high = new Mesh({ publicKey: Buffer.alloc(32, 0xff), networkKey: generateNetworkKey(), host: '0.0.0.0', dataPort: () => 1, members: () => [], dial: async (to) => { dialled.push(to) }, lan: false })
    high.onAddresses(member, one('10.77.0.99'))
    expect(dialled.length).toBe(3)
    mesh.stop()
    high.stop()
  })

  it('a connection to a member dialled from both sides at once: both sides keep the same one, whatever order they saw them in', () => {
    const t = 1_000_000
    // c1 dialled by the smaller key (A), c2 by the larger (B); each side sees them ready in either order.
    for (const [aFirst, bFirst] of [['c1', 'c2'], ['c2', 'c1'], ['c1', 'c1'], ['c2', 'c2']] as const) {
      const kept = (side: 'A' | 'B', first: 'c1' | 'c2'): 'c1' | 'c2' => {
        const conn = (c: 'c1' | 'c2', readyAt: number) => ({ state: 'ready', readyAt, initiator: (c === 'c1') === (side === 'A') })
        const second = first === 'c1' ? 'c2' : 'c1'
        return replacesConnection(conn(second, t + 50), conn(first, t), side === 'A', t + 50) ? second : first
      }
      expect([kept('A', aFirst), kept('B', bFirst)]).toEqual(['c1', 'c1'])
    }
    // A connection held for longer is replaced by a new one (it may be stuck in TCP back-off after a cut link), from either side.
    for (const initiator of [true, false]) {
      expect(replacesConnection({ state: 'ready', readyAt: t + SIMULTANEOUS_MS, initiator }, { state: 'ready', readyAt: t, initiator: !initiator }, true, t + SIMULTANEOUS_MS)).toBe(true)
    }
    // Two dialled from the same side: the newer one.
    expect(replacesConnection({ state: 'ready', readyAt: t + 1, initiator: false }, { state: 'ready', readyAt: t, initiator: false }, true, t + 1)).toBe(true)
  })

  it('two agents that dial each other at start keep one connection, and no peer is lost', async () => {
    const networkKey = generateNetworkKey()
    const [pa, pb] = [await closedPort(), await closedPort()]
    const closed: string[] = []
    const [a, b] = await Promise.all([
      startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'a', dataPort: pa, staticPeers: [{ host: '127.0.0.1', port: pb }] }),
      startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'b', dataPort: pb, staticPeers: [{ host: '127.0.0.1', port: pa }] })
    ])
    for (const s of [a, b]) s.on('peer-closed', (p: { name: string }) => closed.push(p.name))
    await until(() => a.readyPeers().length === 1 && b.readyPeers().length === 1, 20_000, 'a and b connected')
    // Both dialled: each side must keep the connection the other kept (one dialled it, the other took it), not drop the one the other kept.
    await until(() => {
      const [ka, kb] = [a.readyPeers()[0], b.readyPeers()[0]]
      return ka !== undefined && kb !== undefined && ka.initiator !== kb.initiator && ka.bytesReceived > 0 && kb.bytesReceived > 0
    }, 20_000, 'one shared connection')
    const kept = a.readyPeers()[0]
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(a.readyPeers()).toEqual([kept])
    expect(closed).toEqual([])
  })

  it('two agents that know only a third meet each other (no DHT)', async () => {
    const networkKey = generateNetworkKey()
    const hub = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'hub' })
    const to = { host: '127.0.0.1', port: hub.dataPort! }
    const a = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'a', staticPeers: [to] })
    const b = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'b', staticPeers: [to] })
    await until(() => a.readyPeers().length === 2 && b.readyPeers().length === 2, 20_000, 'a and b to meet through the hub')
    expect(a.readyPeers().map((p) => p.name).sort()).toEqual(['b', 'hub'])
    expect(b.readyPeers().map((p) => p.name).sort()).toEqual(['a', 'hub'])
  })
})
