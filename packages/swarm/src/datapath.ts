import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { debugLogger, toHex, type Logger } from '@distswarm/protocol'
import { recordCipher } from './aead.js'
import { SwarmError } from './errors.js'
import { DataLink, PREAMBLE_FIRST_BYTE, RecordReader } from './link.js'
import { intOption } from './options.js'
import type { Peer } from './peer.js'
import { Problems } from './problems.js'
import { MessageSocket } from './reassembly.js'
import type { HostPort, KeyPair, SecretStream } from './types.js'

/** A TCP connection must finish its Noise handshake within this. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000
/** Connections still in their handshake at once; more are refused. */
export const DEFAULT_MAX_HANDSHAKING = 32
/** A dial (to a static peer) must connect within this: the kernel alone waits minutes for a box that is off. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/** Why a static peer cannot be reached, in words a user can act on. */
function unreachableCause (err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused: nothing listens on that port (a wrong --peer port, or the agent there is not running)'
    case 'ERR_TIMEOUT':
    case 'ETIMEDOUT': return 'no answer: a wrong address, a firewall dropping the connection, or the box is down'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return 'no route to the host: a wrong address, or the box is down'
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return 'the name does not resolve: a typo in --peer, or no DNS for it'
    default: return err.message
  }
}

export interface DataPathInit {
  keyPair: KeyPair
  /**
   * Takes a TCP connection whose Noise handshake is done (so its remote key
   * is proven): the swarm runs the protocol on it, hello and membership proof
   * first. `dataOnly` when we dialled it as a fast-path link.
   */
  onStream: (stream: SecretStream, opts: { dataOnly: boolean, initiator: boolean }) => void
  /** True for the key of a member we are already connected to. */
  isMember: (publicKeyHex: string) => boolean
  /** Default DEFAULT_HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number
  /** Default DEFAULT_MAX_HANDSHAKING. */
  maxHandshaking?: number
  /** Default DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number
  /** Default: debug output under distswarm:datapath. */
  logger?: Logger
  /** Where a static peer that cannot be reached is reported. Default: a list of its own, logging to `logger`. */
  problems?: Problems
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
  private readonly log: Logger
  private readonly problems: Problems
  private readonly handshakeTimeoutMs: number
  private readonly maxHandshaking: number
  private readonly connectTimeoutMs: number
  private server: Server | null = null
  /**
   * Fast-path links by remote key: those we dialled, which our requests go
   * over (so the bytes we download arrive on a socket we dialled, read in
   * place: see RecordReader), and those the remote dialled, which carry its
   * requests to us. Both sides dial one.
   */
  private readonly links = new Map<string, Peer>()
  private readonly accepted = new Map<string, Peer>()
  private readonly sockets = new Set<Socket>()
  private handshaking = 0
  /** Addresses that closed on our data link's first bytes without a word: agents from before it, dialled with the secret stream. */
  private readonly legacy = new Set<string>()
  private closed = false
  port = 0

  constructor (init: DataPathInit) {
    this.init = init
    this.log = init.logger ?? debugLogger('distswarm:datapath')
    this.problems = init.problems ?? new Problems(this.log)
    this.handshakeTimeoutMs = intOption('handshakeTimeoutMs', init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1)
    this.maxHandshaking = intOption('maxHandshaking', init.maxHandshaking ?? DEFAULT_MAX_HANDSHAKING, 1)
    this.connectTimeoutMs = intOption('connectTimeoutMs', init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 1)
  }

  /** Listens on `host`:`port` (0: any free port); resolves to the bound port. */
  async listen (host: string, port: number): Promise<number> {
    const server = this.server = createServer((socket) => this.attach(socket, false))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    // close() while we were binding found no server listening yet: close it now.
    if (this.closed) await new Promise<void>((resolve) => server.close(() => resolve()))
    const addr = server.address()
    this.port = typeof addr === 'object' && addr ? addr.port : 0
    // Said once: the data link works either way, at almost three times the cipher's CPU per byte without the addon.
    if (recordCipher.implementation === 'libsodium') this.log.info('datapath.cipher', { implementation: 'libsodium', why: `OpenSSL's addon is not used (npm run build compiles it with cc): ${recordCipher.reason}` })
    return this.port
  }

  /** Opens a fast-path link to a member's advertised data port. On failure transfers just stay on hyperswarm. */
  connect (peer: Peer): void {
    const host = peer.remoteHost
    if (this.closed || !host || peer.remoteDataPort === 0 || this.links.has(peer.publicKeyHex)) return
    const target = `${host}:${peer.remoteDataPort}`
    // An agent from before the data link closes on it: once, then the secret stream (attach() retries only a data link).
    const retry = (): void => { if (!peer.closed) this.connect(peer) }
    const { socket, reader } = this.dialTcp(host, peer.remoteDataPort, target)
    this.attach(socket, true, { dataOnly: true, expected: peer.publicKeyHex }, undefined, target, retry, reader)
  }

  /**
   * Connects to a static peer; resolves when that connection ends (or
   * rejects when it cannot be made, or we refuse it ourselves while too many
   * connections are in their handshake), for the caller to dial again. When
   * we are already connected to that agent some other way, this becomes a
   * link. A failure to connect is reported as a problem naming the address.
   */
  dial (to: HostPort, onConnect?: () => void): Promise<void> {
    const address = `${to.host}:${to.port}`
    return new Promise((resolve, reject) => {
      const { socket, reader } = this.dialTcp(to.host, to.port, address)
      let connected = false
      let error: Error | null = null
      socket.setTimeout(this.connectTimeoutMs, () => {
        if (!connected) socket.destroy(SwarmError.TIMEOUT(`connecting to ${address}`, this.connectTimeoutMs))
      })
      socket.once('connect', () => {
        connected = true
        socket.setTimeout(0)
        onConnect?.()
      })
      socket.once('error', (err) => { error = err })
      // 'close' comes however the socket ends: failed, refused by attach() (which emits no error), or ended after working.
      socket.once('close', () => {
        if (connected) return resolve()
        if (error) this.problems.report('static-peer.unreachable', address, unreachableCause(error), { code: (error as { code?: string }).code ?? '' })
        reject(error ?? SwarmError.PEER_CLOSED())
      })
      this.attach(socket, true, undefined, address, address, undefined, reader)
    })
  }

  /** Dials `target` (host:port): a socket for the data link reads its records in place (see RecordReader); one to an agent known to predate it does not. */
  private dialTcp (host: string, port: number, target: string): { socket: Socket, reader?: RecordReader } {
    const reader = this.legacy.has(target) ? undefined : new RecordReader()
    return { socket: connect({ host, port, onread: reader?.onread }), reader }
  }

  /** The ready link to send requests to this member on: the one we dialled, else the one it dialled (ours could not be made), if any. */
  link (publicKeyHex: string): Peer | undefined {
    return this.linksTo(publicKeyHex)[0]
  }

  /** Every ready link to this member, ours first. */
  linksTo (publicKeyHex: string): Peer[] {
    return [this.links.get(publicKeyHex), this.accepted.get(publicKeyHex)].filter((l): l is Peer => l?.state === 'ready')
  }

  /** Takes a connection that turned out to be a link; a newer one from the same side replaces the old. */
  adopt (peer: Peer): void {
    const links = peer.initiator ? this.links : this.accepted
    const old = links.get(peer.publicKeyHex)
    links.set(peer.publicKeyHex, peer)
    if (old && old !== peer) old.destroy()
  }

  /** Forgets a link that closed. */
  release (peer: Peer): void {
    for (const links of [this.links, this.accepted]) if (links.get(peer.publicKeyHex) === peer) links.delete(peer.publicKeyHex)
  }

  drop (publicKeyHex: string): void {
    this.links.get(publicKeyHex)?.destroy()
    this.accepted.get(publicKeyHex)?.destroy()
  }

  async close (): Promise<void> {
    this.closed = true
    for (const link of [...this.links.values(), ...this.accepted.values()]) link.destroy()
    for (const socket of this.sockets) socket.destroy()
    const server = this.server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /**
   * `dialled`: the static peer's address, to name in a problem; `target`:
   * the address we dialled (initiator), which tells the wire to speak;
   * `legacyRetry`: called when that address turns out to predate the data
   * link; `reader`: what the socket we dialled reads with (see RecordReader).
   */
  private attach (socket: Socket, initiator: boolean, link?: { dataOnly: true, expected: string }, dialled?: string, target?: string, legacyRetry?: () => void, reader?: RecordReader): void {
    if (this.closed || this.handshaking >= this.maxHandshaking) {
      this.log.debug('datapath.refused', { why: this.closed ? 'closed' : 'too many connections in their handshake' })
      socket.destroy()
      return
    }
    this.handshaking++
    this.sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('error', (err) => this.log.debug('datapath.socket-error', { why: err.message }))
    socket.on('close', () => this.sockets.delete(socket))
    let timedOut = false
    let counted = true
    const timer = setTimeout(() => { timedOut = true; socket.destroy() }, this.handshakeTimeoutMs)
    const done = (): void => {
      if (!counted) return
      counted = false
      this.handshaking--
      clearTimeout(timer)
    }
    if (initiator) {
      const legacy = target !== undefined && this.legacy.has(target)
      this.handshake(legacy ? this.secretStream(socket, true) : new DataLink(socket, true, this.init.keyPair, reader), initiator, done, () => timedOut, link, dialled, (stream) => {
        if (legacy || !(stream instanceof DataLink) || !stream.silentRefusal || timedOut || target === undefined) return false
        this.log.info('datapath.legacy-peer', { address: target, why: 'closed on the data link: an agent from before it; using the secret stream' })
        this.legacy.add(target)
        legacyRetry?.()
        return true
      })
      return
    }
    // A responder tells the two wires apart by the first byte (see link.ts).
    socket.once('close', done)
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.unshift(chunk)
      const ours = chunk[0] === PREAMBLE_FIRST_BYTE
      this.handshake(ours ? new DataLink(socket, false, this.init.keyPair) : this.secretStream(socket, false), false, done, () => timedOut, link, dialled)
      // The secret stream starts reading its socket once it has opened (a tick later): the bytes wait till then.
      if (ours) socket.resume()
      else setImmediate(() => { if (!socket.destroyed) socket.resume() })
    })
  }

  /** The secret stream's wire; on a socket we accepted, its messages are gathered in reused buffers (see MessageSocket). */
  private secretStream (socket: Socket, initiator: boolean): SecretStream & { opened: Promise<boolean> } {
    const raw = initiator ? socket : new MessageSocket(socket) as unknown as Duplex
    return new NoiseSecretStream(initiator, raw, { keyPair: this.init.keyPair }) as unknown as SecretStream & { opened: Promise<boolean> }
  }

  /** Waits for the handshake; `fellBack` says whether a failed one is retried on the other wire. */
  private handshake (stream: SecretStream & { opened: Promise<boolean> }, initiator: boolean, done: () => void, timedOut: () => boolean,
    link: { dataOnly: true, expected: string } | undefined, dialled: string | undefined, fellBack: (stream: SecretStream) => boolean = () => false): void {
    const socket = stream.rawStream as Socket
    // Either wire (an 'error' nobody listens to would throw): the one place a stream's listener is attached.
    stream.on('error', (err: Error) => this.log.debug('datapath.stream-error', { why: err.message }))
    void stream.opened.then((opened) => {
      done()
      if (!opened) {
        if (fellBack(stream)) return
        // Connected, yet no Noise handshake: something else listens there.
        if (dialled !== undefined && (timedOut() || socket.bytesRead > 0)) {
          this.problems.report('static-peer.no-handshake', dialled, 'connected, but it does not speak the distswarm data path: is that the agent\'s --data-port?')
        }
        return
      }
      const key = toHex(stream.remotePublicKey)
      if (this.closed || (link !== undefined && key !== link.expected)) {
        stream.destroy()
        return
      }
      // A static peer we already reach over hyperswarm only needs a link.
      const dataOnly = link !== undefined || (initiator && this.init.isMember(key))
      this.init.onStream(stream, { dataOnly, initiator })
    })
  }
}
