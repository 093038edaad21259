// Over 400 lines: one connection's protocol as a state machine (hello, inventory both ways, the requests we make); uploads (uploads.ts), liveness (liveness.ts) and limits (limits.ts) live apart.
import {
  debugLogger, decodeMessage, encodeMessage, FrameDecoder, MAX_INVENTORY_BATCH, PROTOCOL_VERSION, ProtocolError, readInventory, toHex,
  type BuildsMessage, type DataMessage, type PieceMapMessage, type ErrorCodeName, type FileEntry, type HelloMessage, type InventoryView, type Logger, type Message, type PeerAddress
} from '@distswarm/protocol'
import { EntryPool, type PeerFiles } from './entries.js'
import { disown, recycle } from './link.js'
import { recycleMessage } from './reassembly.js'
import { SwarmError } from './errors.js'
import { peerLimits, RateBudgets, rateLimitOf, type BudgetName, type PeerLimits } from './limits.js'
import { Liveness } from './liveness.js'
import { membershipProof, verifyMembershipProof } from './membership.js'
import { IDLE_DEAD_MS, Pinger } from './ping.js'
import { Uploads } from './uploads.js'
import type { LocalSource, SecretStream } from './types.js'

/**
 * Entries in one Inventory message we send (the receiver takes up to
 * MAX_INVENTORY_BATCH): a frame of 256 entries stays under ~100 KiB even at
 * the name limit, below glibc's mmap threshold, so the receiver's buffers
 * for it are reused from malloc's free lists instead of each 400 KiB frame
 * raising that threshold and leaving the heap fragmented (~40 MiB more RSS
 * after 10 inventories of 70 000 entries).
 */
export const INVENTORY_SEND_BATCH = 256

/** Hands back the buffer of a frame received whole that nothing holds any more: a data link's record, or a message gathered from an accepted socket. */
function reuseFrame (chunk: Buffer): void {
  recycle(chunk)
  recycleMessage(chunk)
}

export interface PeerInit {
  stream: SecretStream
  networkKey: Uint8Array
  localName: string
  source: LocalSource
  limits?: PeerLimits
  /** Our fast-path TCP port, told to the remote in hello; 0 for none. Default 0. */
  dataPort?: number
  /** We dialled this connection as a fast-path link: transfers only, no inventory either way. Default false. */
  dataOnly?: boolean
  /** We are a seeder: told to the remote in hello, so it asks us first. Default false. */
  seeder?: boolean
  /** Where remote entries are kept, shared with the other peers. Default: a pool of this peer's own. */
  entries?: EntryPool
  /** How the connection travels, for display and path choice. Default 'hyperswarm'. */
  transport?: 'hyperswarm' | 'tcp'
  /** Default: debug output under distswarm:peer. */
  logger?: Logger
  /** The remote proved membership; it may now see our inventory. */
  onReady: (peer: Peer) => void
  onInventory: (peer: Peer) => void
  /** The remote says bytes we sent it for this digest failed its verification. */
  onReport?: (peer: Peer, blake2b: Buffer) => void
  /** Peer exchange: members the remote is connected to (see mesh.ts). */
  onPeerAddresses?: (peer: Peer, addresses: PeerAddress[]) => void
  /** Binary packages the remote advertises (see builds.ts). */
  onBuilds?: (peer: Peer, msg: BuildsMessage) => void
  /** Verified pieces of a file the remote is downloading (see relay.ts). */
  onPieceMap?: (peer: Peer, msg: PieceMapMessage) => void
  /** A ping measured the round trip again: `clockOffsetMs` may have changed (see ping.ts). */
  onPingSample?: (peer: Peer) => void
  onClose: (peer: Peer, reason: Error | null) => void
}

interface PendingRequest {
  next: number
  end: number
  onChunk: (bytes: Buffer) => void
  resolve: () => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

interface PendingHashes {
  count: number
  resolve: (hashes: Buffer[]) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * One authenticated connection to another agent: the hello exchange, the
 * remote's inventory, our requests to it and its requests to us.
 */
export class Peer {
  readonly publicKey: Buffer
  readonly publicKeyHex: string
  readonly connectedAt = Date.now()
  name = ''
  /** The remote's fast-path TCP port from its hello; 0 when it has none. */
  remoteDataPort = 0
  /** The remote dialled this connection as a fast-path link. */
  remoteDataOnly = false
  /** The remote said it is a seeder: asked first for the files it holds. */
  remoteSeeder = false
  state: 'opening' | 'ready' | 'closed' = 'opening'
  bytesSent = 0
  bytesReceived = 0
  /** Why we refused the remote's hello, when it is a mistake the user must hear of (not an attack on the protocol). */
  refusal: 'wrong-network-key' | 'other-version' | null = null
  /** When the last bytes from the remote arrived (ms since the epoch). */
  lastReceivedAt = Date.now()
  /** When the remote's hello was accepted (ms since the epoch); 0 before. */
  readyAt = 0
  /** The remote's inventory, by hex BLAKE2B digest: a bitset over the EntryPool shared with the other peers. */
  readonly files: PeerFiles
  private readonly pool: EntryPool
  private readonly budgets: RateBudgets

  private readonly stream: SecretStream
  private readonly init: PeerInit
  private readonly limits: Required<PeerLimits>
  private readonly log: Logger
  private readonly decoder = new FrameDecoder()
  private readonly requests = new Map<number, PendingRequest>()
  private readonly hashRequests = new Map<number, PendingHashes>()
  private nextRequestId = 1
  private helloTimer: NodeJS.Timeout | null
  /** Deltas held back while the full inventory is still going out; null when none is. */
  private heldDeltas: Array<{ added: FileEntry[], removed: Buffer[] }> | null = null
  /** Senders of builds waiting for the stream to drain. */
  private writableWaiters: Array<() => void> = []
  private readonly uploads: Uploads
  /** Watches the remote while requests of ours are out: see PeerLimits.deadAfterMs. */
  private readonly liveness: Liveness
  /** Round trips and the remote's clock, on a member connection (see ping.ts). */
  private readonly pinger: Pinger

  constructor (init: PeerInit) {
    this.init = init
    this.stream = init.stream
    this.limits = peerLimits(init.limits)
    this.log = init.logger ?? debugLogger('distswarm:peer')
    this.pool = init.entries ?? new EntryPool()
    this.files = this.pool.holder(() => this.overBudget('pool-bytes', this.pool.maxBytes))
    this.budgets = new RateBudgets(this.limits)
    this.uploads = new Uploads({
      label: () => this.label,
      key: () => this.publicKeyHex,
      ready: () => this.state === 'ready',
      send: (msg) => this.send(msg),
      sendFrame: (frame) => this.sendFrame(frame),
      allocFrame: (size) => this.stream.alloc?.(size) ?? Buffer.allocUnsafe(size),
      writable: () => this.writable(),
      fail: (code, err) => this.fail(code, err)
    }, init.source, this.limits, this.log)
    this.liveness = new Liveness(init.stream, this.limits.deadAfterMs, {
      owed: () => this.requests.size > 0 || this.hashRequests.size > 0,
      lastReceivedAt: () => this.lastReceivedAt,
      dead: (silentMs) => this.dead(silentMs, false),
      poke: () => this.pinger.poke()
    })
    this.pinger = new Pinger({
      send: (msg) => this.send(msg),
      onSample: () => init.onPingSample?.(this),
      silentMs: () => Date.now() - this.lastReceivedAt,
      idleDeadMs: Math.max(IDLE_DEAD_MS, this.limits.deadAfterMs),
      dead: (silentMs) => this.dead(silentMs, true)
    })
    this.publicKey = init.stream.remotePublicKey
    this.publicKeyHex = toHex(this.publicKey)
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk))
    this.stream.on('drain', () => this.flushWritable())
    this.stream.on('error', (err: Error) => this.log.debug('peer.stream-error', { peer: this.label, why: err.message }))
    this.stream.on('close', () => this.close(null))
    this.helloTimer = setTimeout(() => {
      this.fail('AUTH_FAILED', SwarmError.TIMEOUT('waiting for hello', this.limits.helloTimeoutMs))
    }, this.limits.helloTimeoutMs)
    this.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      proof: membershipProof(init.networkKey, this.stream.handshakeHash, this.stream.publicKey),
      name: init.localName,
      dataPort: init.dataPort ?? 0,
      dataOnly: init.dataOnly ?? false,
      seeder: init.seeder ?? false
    })
  }

  /** File bytes uploaded to the remote (Data payloads), for the agent's totals. */
  get bytesServed (): number {
    return this.uploads.bytesServed
  }

  /** Of bytesServed, those relayed from partial downloads (swarming). */
  get bytesRelayed (): number {
    return this.uploads.bytesRelayed
  }

  /** While requests of ours are out on a UDX connection: ms since the remote last showed life; 0 otherwise. */
  get silentMs (): number {
    return this.liveness.silentMs
  }

  get label (): string {
    return `${this.name || '?'}@${this.publicKeyHex.slice(0, 8)}`
  }

  /** The remote's address as this connection sees it (a UDX stream's remoteHost, a TCP socket's remoteAddress). */
  get remoteHost (): string | null {
    const raw = this.stream.rawStream
    return raw?.remoteHost ?? raw?.remoteAddress ?? null
  }

  get remoteAddress (): string | null {
    const host = this.remoteHost
    return host ? `${host}:${this.stream.rawStream?.remotePort ?? 0}` : null
  }

  /**
   * Round-trip time in ms: the UDX connection's smoothed one (hyperswarm);
   * on TCP, the shortest recent Ping round trip (ping.ts). Null until the
   * first pong, and for an agent that does not answer pings.
   */
  get rttMs (): number | null {
    const rtt = this.stream.rawStream?.rtt
    return typeof rtt === 'number' ? rtt : this.pinger.rttMs
  }

  /** How far the remote's wall clock is ahead of ours in ms (negative: behind), from pings; null until the first pong. */
  get clockOffsetMs (): number | null {
    return this.pinger.clockOffsetMs
  }

  get closed (): boolean {
    return this.state === 'closed'
  }

  /** We dialled this connection. */
  get initiator (): boolean {
    return this.stream.isInitiator
  }

  /** A fast-path link (either side dialled it as one), not a member connection. */
  get isLink (): boolean {
    return this.init.dataOnly === true || this.remoteDataOnly
  }

  get transport (): 'hyperswarm' | 'tcp' {
    return this.init.transport ?? 'hyperswarm'
  }

  /** The remote's files of this name (usually one). */
  filesNamed (name: string): FileEntry[] {
    // The pool's name index, not one of our own: it is shared by every peer, and a lookup must not scan every entry.
    return this.files.named(name)
  }

  /**
   * Sends our full inventory in batches no message bound is near, yielding
   * to the event loop between them (70 000 entries must not stall serving).
   * Deltas meanwhile wait and follow it, so none is overtaken by a batch
   * listing what it removed.
   */
  private async sendInventory (entries: Iterable<FileEntry>): Promise<void> {
    const all = [...entries]
    this.heldDeltas = []
    for (let i = 0; (i === 0 || i < all.length) && !this.closed; i += INVENTORY_SEND_BATCH) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve))
      const added = all.slice(i, i + INVENTORY_SEND_BATCH).map((e) => ({ name: e.name, size: e.size, blake2b: e.blake2b, sha512: e.sha512 }))
      this.send({ type: 'inventory', reset: i === 0, added, removed: [] })
    }
    const held = this.heldDeltas
    this.heldDeltas = null
    for (const d of held) this.sendInventoryDelta(d.added, d.removed)
  }

  /** Tells the remote what we gained and lost since the full inventory. */
  sendInventoryDelta (added: FileEntry[], removed: Buffer[]): void {
    if (this.heldDeltas) {
      this.heldDeltas.push({ added, removed })
      return
    }
    for (let i = 0; i < Math.max(added.length, removed.length); i += MAX_INVENTORY_BATCH / 2) {
      this.send({
        type: 'inventory',
        reset: false,
        added: added.slice(i, i + MAX_INVENTORY_BATCH / 2),
        removed: removed.slice(i, i + MAX_INVENTORY_BATCH / 2)
      })
    }
  }

  /**
   * Asks for a byte range; `onChunk` gets the bytes in order. Resolves when the
   * whole range arrived; rejects on an error reply, a stall past the request
   * timeout, a protocol violation or the connection closing; `signal`
   * cancels it (the remote is told to stop) and rejects ERR_CANCELLED.
   */
  request (blake2b: Buffer, offset: number, length: number, onChunk: (bytes: Buffer) => void, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'ready') return Promise.reject(SwarmError.PEER_CLOSED())
    if (signal?.aborted) return Promise.reject(SwarmError.CANCELLED())
    const id = this.nextId()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.endRequest(id, SwarmError.TIMEOUT('request', this.limits.requestTimeoutMs)), this.limits.requestTimeoutMs)
      const onAbort = (): void => this.endRequest(id, SwarmError.CANCELLED())
      signal?.addEventListener('abort', onAbort, { once: true })
      const settled = (): void => signal?.removeEventListener('abort', onAbort)
      this.requests.set(id, {
        next: offset,
        end: offset + length,
        onChunk,
        resolve: () => { settled(); resolve() },
        reject: (err) => { settled(); reject(err) },
        timer
      })
      this.send({ type: 'request', id, blake2b, offset, length })
      this.liveness.watch()
    })
  }

  /**
   * Asks for the piece hashes of the remote's copy of a file (HashRequest).
   * Rejects on an error reply, a wrong number of hashes, the request
   * timeout or the connection closing.
   */
  requestHashes (blake2b: Buffer, offset: number, length: number, pieceSize: number): Promise<Buffer[]> {
    if (this.state !== 'ready') return Promise.reject(SwarmError.PEER_CLOSED())
    const id = this.nextId()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.hashRequests.delete(id)
        reject(SwarmError.TIMEOUT('hash request', this.limits.requestTimeoutMs))
      }, this.limits.requestTimeoutMs)
      this.hashRequests.set(id, { count: Math.ceil(length / pieceSize), resolve, reject, timer })
      this.send({ type: 'hash-request', id, blake2b, offset, length, pieceSize })
      this.liveness.watch()
    })
  }

  private nextId (): number {
    const id = this.nextRequestId++
    if (this.nextRequestId > 0xffffffff) this.nextRequestId = 1
    return id
  }

  /** Tells the remote that bytes it sent for this digest failed verification. */
  sendReport (blake2b: Buffer): void {
    this.send({ type: 'report', blake2b })
  }

  /** Peer exchange: where members we are connected to listen. A peer without this message type answers UNKNOWN_TYPE, which is only logged. */
  sendPeerAddresses (addresses: PeerAddress[]): void {
    this.send({ type: 'peer-addresses', addresses })
  }

  /**
   * Our binary packages (see builds.ts). A peer without this message type
   * answers UNKNOWN_TYPE, which is only logged. False when the stream's
   * buffer is full: wait for writable() before sending more.
   */
  sendBuilds (msg: Omit<BuildsMessage, 'type'>): boolean {
    return this.send({ type: 'builds', ...msg })
  }

  /** Verified pieces of a download of ours (see relay.ts). A peer without this message type answers UNKNOWN_TYPE, which is only logged. */
  sendPieceMap (msg: Omit<PieceMapMessage, 'type'>): void {
    this.send({ type: 'piece-map', ...msg })
  }

  /** Resolves when the stream takes writes again, or the connection closed. */
  writable (): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => this.writableWaiters.push(resolve))
  }

  private flushWritable (): void {
    const waiters = this.writableWaiters
    this.writableWaiters = []
    for (const resolve of waiters) resolve()
  }

  /** Ends the connection. Idempotent. */
  destroy (reason?: Error): void {
    this.close(reason ?? null)
  }

  /** Gives up on a request of ours: the remote is told to stop sending. */
  private endRequest (id: number, reason: Error): void {
    const req = this.requests.get(id)
    if (!req) return
    clearTimeout(req.timer)
    this.requests.delete(id)
    this.send({ type: 'cancel', id })
    req.reject(reason)
  }

  private send (msg: Message): boolean {
    if (this.state === 'closed') return false
    return this.sendFrame(encodeMessage(msg))
  }

  private sendFrame (frame: Buffer): boolean {
    this.bytesSent += frame.byteLength
    return this.stream.write(frame)
  }

  private onData (chunk: Buffer): void {
    if (this.state === 'closed') return
    this.bytesReceived += chunk.byteLength
    this.lastReceivedAt = Date.now()
    let frames: Buffer[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      this.fail('BAD_MESSAGE', err as Error)
      return
    }
    // A data link record is one frame; any other split leaves views of its buffer about, so it is not reused.
    const whole = frames.length === 1 && frames[0]!.byteLength + 4 === chunk.byteLength
    if (!whole) disown(chunk)
    for (const frame of frames) {
      if (this.closed) return
      let msg: Message
      try {
        // An Inventory is read in place, its entries made one at a time (see readInventory): no batch of objects to outlive a scavenge.
        const inv = this.state === 'ready' ? readInventory(frame) : null
        if (inv !== null) {
          this.onInventory(inv)
          // The pool copied what it keeps: the buffer goes back for the next record or message (a flood's frames are otherwise garbage until a scavenge).
          if (whole) reuseFrame(chunk)
          continue
        }
        msg = decodeMessage(frame)
      } catch (err) {
        const code = (err as ProtocolError).code
        if (code === 'ERR_UNKNOWN_TYPE' && this.state === 'ready') {
          // A newer peer may speak types we lack: say so, and carry on.
          this.send({ type: 'error', code: 'UNKNOWN_TYPE', id: 0, message: 'unknown message type' })
          continue
        }
        this.fail('BAD_MESSAGE', err as Error)
        return
      }
      this.dispatch(msg)
    }
  }

  private dispatch (msg: Message): void {
    if (this.state === 'opening') {
      if (msg.type !== 'hello') {
        this.fail('AUTH_FAILED', SwarmError.AUTH_FAILED(`sent ${msg.type} before hello`))
        return
      }
      this.onHello(msg)
      return
    }
    switch (msg.type) {
      case 'hello': return this.fail('BAD_MESSAGE', SwarmError.PROTOCOL_VIOLATION('second hello'))
      // readInventory found none where the generated decoder did: a malformed envelope it reads askew.
      case 'inventory': return this.fail('BAD_MESSAGE', SwarmError.PROTOCOL_VIOLATION('an inventory in a malformed envelope'))
      case 'request': return this.charged(this.budgets.request()) ? this.uploads.onRequest(msg) : undefined
      case 'data': return this.onDataMessage(msg)
      case 'cancel': return this.charged(this.budgets.request()) ? this.uploads.onCancel(msg.id) : undefined
      case 'error': return this.onErrorReply(msg.code, msg.id, msg.message)
      case 'report': return this.init.onReport?.(this, msg.blake2b)
      case 'hash-request': return this.charged(this.budgets.hashRequest()) ? void this.uploads.onHashRequest(msg) : undefined
      case 'hashes': return this.onHashes(msg.id, msg.hashes)
      case 'peer-addresses': return this.init.onPeerAddresses?.(this, msg.addresses)
      case 'builds': return this.charged(this.budgets.builds(msg.added.length + msg.removed.length)) ? this.init.onBuilds?.(this, msg) : undefined
      case 'ping': return this.pinger.onPing(msg)
      case 'pong': return this.pinger.onPong(msg)
      case 'piece-map': return this.init.onPieceMap?.(this, msg)
    }
  }

  private onHello ({ version, proof, name, dataPort, dataOnly, seeder }: HelloMessage): void {
    if (version !== PROTOCOL_VERSION) {
      this.refusal = 'other-version'
      this.fail('UNSUPPORTED_VERSION', SwarmError.PROTOCOL_VIOLATION(`speaks protocol version ${version}, we speak ${PROTOCOL_VERSION}`))
      return
    }
    if (!verifyMembershipProof(this.init.networkKey, this.stream.handshakeHash, this.publicKey, proof)) {
      this.refusal = 'wrong-network-key'
      this.fail('AUTH_FAILED', SwarmError.AUTH_FAILED('wrong network key proof'))
      return
    }
    if (this.helloTimer) clearTimeout(this.helloTimer)
    this.helloTimer = null
    this.name = name
    this.remoteDataPort = dataPort
    this.remoteDataOnly = dataOnly
    this.remoteSeeder = seeder
    this.state = 'ready'
    this.readyAt = Date.now()
    this.log.debug('peer.authenticated', { peer: this.label, link: this.isLink })
    if (!this.isLink) {
      void this.sendInventory(this.init.source.entries())
      this.pinger.start()
    }
    this.init.onReady(this)
  }

  private onInventory (msg: InventoryView): void {
    if (msg.reset) this.files.clear()
    msg.eachRemoved((buf, at) => this.files.removeRaw(buf, at))
    msg.eachAdded((e) => this.files.addRaw(e))
    // Checked after each batch: a peer goes past a budget by one batch at most.
    if (this.files.size > this.limits.maxRemoteEntries) return this.overBudget('inventory-entries', this.limits.maxRemoteEntries)
    if (this.files.bytes > this.limits.maxRemoteInventoryBytes) return this.overBudget('inventory-bytes', this.limits.maxRemoteInventoryBytes)
    // The pool past its own budget cuts off whoever holds the most entries no one else holds (maybe this peer).
    this.pool.enforce()
    if (this.closed) return
    this.init.onInventory(this)
  }

  /**
   * The budget hook for piece-map deltas (swarming downloads): whoever
   * receives `n` of them from the remote calls this first; false when the
   * remote went past maxPieceMapDeltasPerSecond and is being cut off.
   */
  chargePieceMap (n: number): boolean {
    return this.charged(this.budgets.pieceMap(n))
  }

  /** True when a charge kept within budget; else the remote is cut off. */
  private charged (broken: BudgetName | null): boolean {
    if (broken === null) return true
    this.overBudget(broken, rateLimitOf(this.limits, broken))
    return false
  }

  /** Cuts off a remote that went past a budget: a warning with the reason, an error reply, and the connection closed with ERR_PEER_OVER_BUDGET. */
  private overBudget (budget: BudgetName, limit: number): void {
    if (this.closed) return
    const err = SwarmError.OVER_BUDGET(budget, limit)
    this.log.warn('peer.over-budget', { peer: this.label, address: this.remoteAddress, budget, limit, entries: this.files.size, bytes: this.files.bytes, code: err.code })
    this.fail('BAD_MESSAGE', err)
  }

  private onDataMessage (msg: DataMessage): void {
    const req = this.requests.get(msg.id)
    if (!req) return // answer to a request we cancelled
    if (msg.offset !== req.next || req.next + msg.bytes.byteLength > req.end) {
      this.fail('BAD_RANGE', SwarmError.PROTOCOL_VIOLATION(`data at ${msg.offset} (+${msg.bytes.byteLength}) when ${req.next}..${req.end} was due`))
      return
    }
    req.next += msg.bytes.byteLength
    req.timer.refresh()
    req.onChunk(msg.bytes)
    if (req.next === req.end) {
      clearTimeout(req.timer)
      this.requests.delete(msg.id)
      req.resolve()
    }
  }

  private onHashes (id: number, hashes: Buffer[]): void {
    const req = this.hashRequests.get(id)
    if (!req) return
    clearTimeout(req.timer)
    this.hashRequests.delete(id)
    if (hashes.length === req.count) req.resolve(hashes)
    else req.reject(SwarmError.PROTOCOL_VIOLATION(`${hashes.length} piece hashes when ${req.count} were asked for`))
  }

  private onErrorReply (code: ErrorCodeName, id: number, message: string): void {
    for (const pending of [this.hashRequests, this.requests]) {
      const req = id === 0 ? undefined : pending.get(id)
      if (!req) continue
      clearTimeout(req.timer)
      pending.delete(id)
      req.reject(SwarmError.REMOTE(code, message))
      return
    }
    this.log.debug('peer.reported', { peer: this.label, code, why: message })
  }

  /** The remote showed no life: silent while it owed us bytes (liveness.ts), or, `idle`, its pings unanswered (ping.ts). */
  private dead (silentMs: number, idle: boolean): void {
    this.log.info('peer.dead', { peer: this.label, address: this.remoteAddress, silentMs, idle: idle || undefined })
    this.close(SwarmError.PEER_DEAD(silentMs, idle))
  }

  /** Tells the remote why, then ends the connection. */
  private fail (code: ErrorCodeName, err: Error): void {
    if (this.state === 'closed') return
    this.log.debug('peer.dropped', { peer: this.label, code, why: err.message })
    this.send({ type: 'error', code, id: 0, message: err.message })
    // Nothing it sends is read from now on: a member cut off mid-flood would otherwise have its frames decrypted and dropped until close() destroys the stream.
    // Its socket too: a data link has no pause of its own, and the secret stream's reads its socket on until its buffer fills.
    const raw = this.stream.rawStream as { pause?: () => unknown } | undefined
    this.stream.pause?.()
    raw?.pause?.()
    this.close(err)
  }

  private close (reason: Error | null): void {
    if (this.state === 'closed') return
    const wasReady = this.state === 'ready'
    this.state = 'closed'
    if (this.helloTimer) clearTimeout(this.helloTimer)
    this.liveness.stop()
    this.pinger.stop()
    for (const req of this.requests.values()) {
      clearTimeout(req.timer)
      req.reject(reason ?? SwarmError.PEER_CLOSED())
    }
    this.requests.clear()
    for (const req of this.hashRequests.values()) {
      clearTimeout(req.timer)
      req.reject(reason ?? SwarmError.PEER_CLOSED())
    }
    this.hashRequests.clear()
    this.uploads.clear()
    this.flushWritable()
    this.stream.end()
    // Give the error reply a moment to flush, then make sure the socket dies.
    setTimeout(() => this.stream.destroy(), 1000).unref()
    this.files.close()
    this.init.onClose(this, wasReady ? reason : reason ?? SwarmError.PEER_CLOSED())
  }
}
