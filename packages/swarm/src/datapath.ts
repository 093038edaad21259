import { connect, createServer, type Server, type Socket } from 'node:net'
import createDebug from 'debug'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { toHex } from '@distswarm/protocol'
import type { Peer } from './peer.js'
import type { HostPort, KeyPair, SecretStream } from './types.js'

const log = createDebug('distswarm:datapath')

/** A TCP connection must finish its Noise handshake within this. */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** Connections still in their handshake at once; more are refused. */
const MAX_HANDSHAKING = 32

export interface DataPathInit {
  keyPair: KeyPair
  /**
   * Takes a TCP connection whose Noise handshake is done (so its remote key
   * is proven): the swarm runs the protocol on it, hello and membership proof
   * first. `dataOnly` when we dialled it as a fast-path link.
   */
  onStream: (stream: SecretStream, opts: { dataOnly: boolean }) => void
  /** True for the key of a member we are already connected to. */
  isMember: (publicKeyHex: string) => boolean
}

/**
 * The TCP side of the swarm. Hyperswarm's UDX stream finds and authenticates
 * peers but moves ~100 MB/s; the same Noise secret stream over plain TCP
 * moves several times that. Over TCP come fast-path links (transfers only,
 * between members that met over hyperswarm) and connections to static peers
 * (full member connections, for a LAN without a DHT). Both are encrypted
 * with the agents' own key pairs, so the remote key proves who dialled, and
 * both must open with a hello that proves the network key.
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

  /** Opens a fast-path link to a member's advertised data port. On failure transfers just stay on hyperswarm. */
  connect (peer: Peer): void {
    const host = peer.remoteHost
    if (this.closed || !host || peer.remoteDataPort === 0 || this.links.has(peer.publicKeyHex)) return
    this.attach(connect({ host, port: peer.remoteDataPort }), true, { dataOnly: true, expected: peer.publicKeyHex })
  }

  /**
   * Connects to a static peer; resolves when that connection ends (or
   * rejects when it cannot be made), for the caller to dial again. When we
   * are already connected to that agent some other way, this becomes a link.
   */
  dial (to: HostPort, onConnect?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: to.host, port: to.port })
      socket.once('connect', () => { onConnect?.(); socket.once('close', () => resolve()) })
      socket.once('error', reject)
      this.attach(socket, true)
    })
  }

  /** The ready link to this member, if any. */
  link (publicKeyHex: string): Peer | undefined {
    const link = this.links.get(publicKeyHex)
    return link?.state === 'ready' ? link : undefined
  }

  /** Takes a connection that turned out to be a link. */
  adopt (peer: Peer): void {
    const old = this.links.get(peer.publicKeyHex)
    this.links.set(peer.publicKeyHex, peer)
    if (old && old !== peer) old.destroy()
  }

  /** Forgets a link that closed. */
  release (peer: Peer): void {
    if (this.links.get(peer.publicKeyHex) === peer) this.links.delete(peer.publicKeyHex)
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

  private attach (socket: Socket, initiator: boolean, link?: { dataOnly: true, expected: string }): void {
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
      if (this.closed || (link !== undefined && key !== link.expected)) {
        stream.destroy()
        return
      }
      // A static peer we already reach over hyperswarm only needs a link.
      const dataOnly = link !== undefined || (initiator && this.init.isMember(key))
      this.init.onStream(stream as unknown as SecretStream, { dataOnly })
    })
  }
}
