import { connect, createServer, type Server, type Socket } from 'node:net'
import createDebug from 'debug'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { toHex } from '@distswarm/protocol'
import { Peer, type PeerLimits } from './peer.js'
import type { KeyPair, LocalSource, SecretStream } from './types.js'

const log = createDebug('distswarm:datapath')

/** A TCP connection must finish its Noise handshake within this. */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** Connections still in their handshake at once; more are refused. */
const MAX_HANDSHAKING = 32

export interface DataPathInit {
  keyPair: KeyPair
  networkKey: Uint8Array
  localName: string
  source: LocalSource
  limits?: PeerLimits
  /** True for the key of a peer authenticated over hyperswarm: only such peers get a link. */
  isMember: (publicKeyHex: string) => boolean
}

/**
 * The fast path for bulk data: hyperswarm's UDX stream finds and
 * authenticates peers but moves ~100 MB/s; the same Noise secret stream
 * over plain TCP moves several times that. A link is a TCP connection
 * between two members, encrypted with their own key pairs (so the remote
 * static key proves which member it is) and starting with a hello that
 * proves the network key again, bound to this connection.
 */
export class DataPath {
  private readonly init: DataPathInit
  private server: Server | null = null
  private readonly links = new Map<string, Peer>()
  private readonly sockets = new Set<Socket>()
  private handshaking = 0
  private closed = false
  port = 0

  constructor (init: DataPathInit) {
    this.init = init
  }

  /** Listens on `host`:`port` (0: any free port); resolves to the bound port. */
  async listen (host: string, port: number): Promise<number> {
    const server = this.server = createServer((socket) => this.attach(socket, false))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    const addr = server.address()
    this.port = typeof addr === 'object' && addr ? addr.port : 0
    return this.port
  }

  /** Opens a link to a member's advertised data port. On failure transfers just stay on hyperswarm. */
  connect (peer: Peer): void {
    const host = peer.remoteHost
    if (this.closed || !host || peer.remoteDataPort === 0 || this.links.has(peer.publicKeyHex)) return
    const socket = connect({ host, port: peer.remoteDataPort })
    this.attach(socket, true, peer.publicKeyHex)
  }

  /** The ready link to this member, if any. */
  link (publicKeyHex: string): Peer | undefined {
    const link = this.links.get(publicKeyHex)
    return link?.state === 'ready' ? link : undefined
  }

  drop (publicKeyHex: string): void {
    this.links.get(publicKeyHex)?.destroy()
  }

  async close (): Promise<void> {
    this.closed = true
    for (const link of this.links.values()) link.destroy()
    for (const socket of this.sockets) socket.destroy()
    const server = this.server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private attach (socket: Socket, initiator: boolean, expected?: string): void {
    if (this.closed || this.handshaking >= MAX_HANDSHAKING) {
      socket.destroy()
      return
    }
    this.handshaking++
    this.sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('error', (err) => log('data socket error: %s', err.message))
    socket.on('close', () => this.sockets.delete(socket))
    const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS)
    const stream = new NoiseSecretStream(initiator, socket, { keyPair: this.init.keyPair })
    stream.on('error', (err: Error) => log('data stream error: %s', err.message))
    void stream.opened.then((opened) => {
      this.handshaking--
      clearTimeout(timer)
      if (!opened) return
      const key = toHex(stream.remotePublicKey)
      // Only a member we already authenticated over hyperswarm, and when we dialled, the one we meant.
      if (this.closed || !this.init.isMember(key) || (expected !== undefined && key !== expected)) {
        log('refusing a data link from %s', key.slice(0, 8))
        stream.destroy()
        return
      }
      this.links.get(key)?.destroy()
      const link = new Peer({
        stream: stream as unknown as SecretStream,
        networkKey: this.init.networkKey,
        localName: this.init.localName,
        source: this.init.source,
        limits: this.init.limits,
        advertise: false,
        onReady: () => log('data link to %s up', key.slice(0, 8)),
        onInventory: () => {},
        onClose: (p) => { if (this.links.get(key) === p) this.links.delete(key) }
      })
      this.links.set(key, link)
    })
  }
}
