/**
 * Zero-config LAN discovery: a small UDP beacon on a link-local multicast
 * group (TTL 1: never routed). A beacon carries a tag that only boxes with
 * the network key can compute, rotating every EPOCH_MS so a passer-by can
 * neither learn the key nor follow a box from one epoch to the next, and the
 * sender's data port. A box that hears a matching beacon connects to that
 * port directly and proves membership as on any connection.
 *
 * Beacon, BEACON_BYTES bytes:
 *   magic "DSWL" | version 1 | tag (16) | instance (16) | data port (u16 BE) | mac (16)
 * tag = keyed BLAKE2b(lanKey, "tag" ‖ epoch)[:16]; instance: random per
 * process and epoch (who is who within an epoch; the lower one dials, so two
 * boxes do not dial each other at once); mac = keyed BLAKE2b(lanKey, "mac" ‖
 * tag ‖ instance ‖ port)[:16], so nobody without the key can make a member
 * dial a port of their choosing.
 */
import { createSocket, type Socket } from 'node:dgram'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import b4a from 'b4a'
import sodium from 'sodium-universal'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { TokenBucket } from './rate.js'
import type { HostPort } from './types.js'

/** UDP port every agent of a LAN listens on for beacons (next to the bootstrap node's 49737 and the data port's 49738). */
export const LAN_DISCOVERY_PORT = 49736
/** An administratively scoped group, sent with TTL 1: the beacon stays on the link. */
export const LAN_DISCOVERY_GROUP = '239.255.77.36'
/** A tag is valid for one epoch; the neighbouring epochs are accepted too, for clocks a little apart. */
export const EPOCH_MS = 10 * 60_000

const MAGIC = b4a.from('DSWL')
const VERSION = 1
const TAG_BYTES = 16
const INSTANCE_BYTES = 16
const MAC_BYTES = 16
export const BEACON_BYTES = MAGIC.byteLength + 1 + TAG_BYTES + INSTANCE_BYTES + 2 + MAC_BYTES
const LAN_CONTEXT = b4a.from('distswarm/v1/lan-discovery')

/** Announce this often while running (and once at start). */
const DEFAULT_INTERVAL_MS = 5_000
/** Beacons sent in answer to others': a burst of this many, refilled at ANSWERS_PER_S. */
const ANSWER_BURST = 4
const ANSWERS_PER_S = 2
/** Packets looked at per second (bursts of twice that); the rest are dropped unread. */
const PACKETS_PER_S = 200

function keyedHash (key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const out = b4a.alloc(32)
  sodium.crypto_generichash(out, b4a.concat(parts), key)
  return out
}

function epochBytes (epoch: number): Buffer {
  const b = b4a.alloc(8)
  b.writeBigUInt64BE(BigInt(epoch))
  return b
}

/** The key beacons are made with: derived from the network key, never the key itself. */
export function lanKeyOf (networkKey: Uint8Array): Buffer {
  return keyedHash(networkKey, LAN_CONTEXT)
}

/** The tag of one epoch. */
export function lanTag (lanKey: Uint8Array, epoch: number): Buffer {
  return keyedHash(lanKey, b4a.from('tag'), epochBytes(epoch)).subarray(0, TAG_BYTES)
}

function mac (lanKey: Uint8Array, tag: Uint8Array, instance: Uint8Array, port: Uint8Array): Buffer {
  return keyedHash(lanKey, b4a.from('mac'), tag, instance, port).subarray(0, MAC_BYTES)
}

export function encodeBeacon (lanKey: Uint8Array, epoch: number, instance: Uint8Array, dataPort: number): Buffer {
  const tag = lanTag(lanKey, epoch)
  const port = b4a.alloc(2)
  port.writeUInt16BE(dataPort)
  return b4a.concat([MAGIC, b4a.from([VERSION]), tag, instance, port, mac(lanKey, tag, instance, port)])
}

/** The beacon's instance and data port, or null when it is malformed, of another network or too old (or new). */
export function decodeBeacon (lanKey: Uint8Array, packet: Buffer, now: number): { instance: Buffer, dataPort: number } | null {
  if (packet.byteLength !== BEACON_BYTES || !packet.subarray(0, 4).equals(MAGIC) || packet[4] !== VERSION) return null
  let at = 5
  const tag = packet.subarray(at, at += TAG_BYTES)
  const instance = packet.subarray(at, at += INSTANCE_BYTES)
  const port = packet.subarray(at, at += 2)
  const theirMac = packet.subarray(at)
  const epoch = Math.floor(now / EPOCH_MS)
  if (![epoch, epoch - 1, epoch + 1].some((e) => e >= 0 && lanTag(lanKey, e).equals(tag))) return null
  if (!sodium.sodium_memcmp(mac(lanKey, tag, instance, port), theirMac)) return null
  const dataPort = port.readUInt16BE()
  return dataPort === 0 ? null : { instance: Buffer.from(instance), dataPort }
}

export const isLoopbackHost = (host: string): boolean => host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))

export interface LanDiscoveryInit {
  networkKey: Uint8Array
  /**
   * The address the agent is bound to. A loopback address: beacons go out
   * and are heard on loopback only (a test on one machine never sends a
   * packet past it). 0.0.0.0: on every non-internal IPv4 interface. Any
   * other address: on that interface.
   */
  host: string
  /** Our data port, which beacons carry. */
  dataPort: number
  /** Default LAN_DISCOVERY_PORT. */
  port?: number
  /** Default LAN_DISCOVERY_GROUP. */
  group?: string
  /** Default 5 s. */
  intervalMs?: number
  /** True when we hold a member connection to this data port; no dial then. */
  isConnected: (to: HostPort) => boolean
  /** Connect to an agent heard at this address (the caller bounds how often one address is dialled). */
  dial: (to: HostPort) => void
  logger?: Logger
  /** The clock, for tests. */
  now?: () => number
}

/** Runs the beacon: start() and stop(), both idempotent. */
export class LanDiscovery {
  private readonly init: LanDiscoveryInit
  private readonly lanKey: Buffer
  private readonly logger: Logger
  private readonly now: () => number
  private socket: Socket | null = null
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  /** Our instance per epoch: the current one and the one before, to know our own beacons. */
  private readonly instances = new Map<number, Buffer>()
  private readonly joined = new Set<string>()
  private readonly answers: TokenBucket
  private readonly packets: TokenBucket
  /** Beacons heard that matched, for status and tests. */
  heard = 0

  constructor (init: LanDiscoveryInit) {
    this.init = init
    this.lanKey = lanKeyOf(init.networkKey)
    this.logger = init.logger ?? debugLogger('distswarm:lan')
    this.now = init.now ?? Date.now
    this.answers = new TokenBucket(ANSWER_BURST, ANSWERS_PER_S, this.now)
    this.packets = new TokenBucket(2 * PACKETS_PER_S, PACKETS_PER_S, this.now)
  }

  async start (): Promise<void> {
    if (this.socket || this.stopped) return
    const { port = LAN_DISCOVERY_PORT, group = LAN_DISCOVERY_GROUP, intervalMs = DEFAULT_INTERVAL_MS } = this.init
    const socket = this.socket = createSocket({ type: 'udp4', reuseAddr: true })
    socket.on('message', (msg, rinfo) => this.onPacket(msg, rinfo.address))
    socket.on('error', (err) => this.logger.warn('lan.socket-error', { error: err.message }))
    try {
      // Bound to the group: only beacons reach us, never unicast to this port.
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(port, group, () => { socket.off('error', reject); resolve() })
      })
      socket.setMulticastTTL(1)
      socket.setMulticastLoopback(true) // other agents on this host (or in a test) hear us too
    } catch (err) {
      this.socket = null
      socket.close()
      throw err
    }
    this.announce()
    this.timer = setInterval(() => this.announce(), intervalMs)
    this.timer.unref()
  }

  stop (): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.socket?.close()
    this.socket = null
  }

  /** The IPv4 addresses of the interfaces beacons go out on. */
  private interfaces (): string[] {
    const host = this.init.host
    if (isLoopbackHost(host)) return [isIP(host) === 4 ? host : '127.0.0.1']
    if (host !== '0.0.0.0' && host !== '::') return isIP(host) === 4 ? [host] : []
    return Object.values(networkInterfaces()).flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal).map((a) => a!.address)
  }

  private instance (epoch: number): Buffer {
    let own = this.instances.get(epoch)
    if (!own) {
      own = b4a.alloc(INSTANCE_BYTES)
      sodium.randombytes_buf(own)
      this.instances.set(epoch, own)
      for (const e of this.instances.keys()) if (e < epoch - 1) this.instances.delete(e)
    }
    return own
  }

  /** Sends one beacon on every interface (joining the group on any new one first). */
  private announce (): void {
    const socket = this.socket
    if (!socket) return
    const { port = LAN_DISCOVERY_PORT, group = LAN_DISCOVERY_GROUP } = this.init
    const epoch = Math.floor(this.now() / EPOCH_MS)
    const beacon = encodeBeacon(this.lanKey, epoch, this.instance(epoch), this.init.dataPort)
    for (const address of this.interfaces()) {
      try {
        if (!this.joined.has(address)) {
          socket.addMembership(group, address)
          this.joined.add(address)
        }
        socket.setMulticastInterface(address)
        socket.send(beacon, port, group, (err) => { if (err) this.logger.debug('lan.send-failed', { interface: address, error: err.message }) })
      } catch (err) {
        this.logger.debug('lan.interface-failed', { interface: address, error: (err as Error).message })
      }
    }
  }

  /** Exposed for tests: what a packet from `from` leads to. */
  onPacket (packet: Buffer, from: string): 'ignored' | 'connected' | 'dial' | 'answer' {
    if (this.stopped || !this.packets.take()) return 'ignored'
    const now = this.now()
    const beacon = decodeBeacon(this.lanKey, packet, now)
    if (!beacon || isIP(from) !== 4) return 'ignored'
    // A loopback source can only be a beacon that never left this box: good for a loopback agent only.
    if (isLoopbackHost(from) !== isLoopbackHost(this.init.host) || from === '0.0.0.0') return 'ignored'
    const epoch = Math.floor(now / EPOCH_MS)
    const ours = this.instance(epoch)
    if (beacon.instance.equals(ours) || beacon.instance.equals(this.instances.get(epoch - 1) ?? b4a.alloc(0))) return 'ignored'
    this.heard++
    const to = { host: from, port: beacon.dataPort }
    if (this.init.isConnected(to)) return 'connected'
    // The lower instance dials; the higher answers with its own beacon, so the lower one hears it now, not at its next round.
    if (Buffer.compare(ours, beacon.instance) > 0) {
      if (this.answers.take()) this.announce()
      return 'answer'
    }
    this.logger.debug('lan.heard', { address: `${to.host}:${to.port}` })
    this.init.dial(to)
    return 'dial'
  }
}
