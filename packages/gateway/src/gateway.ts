/**
 * The agent's one HTTP server: `/distfiles/` a Gentoo mirror backed by the
 * swarm, `/binpkgs/` a binhost of the builds the box trusts, `/metrics` for
 * Prometheus, and everything else offered to an optional page handler (the
 * status page).
 *
 * Verified bytes only: a file this box lacks is fetched through the
 * source's verified path (whole-file check, atomic publish) and only then
 * served, from the published file. The response waits for that (headers
 * included), so no byte of a failed download ever reaches a client.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { debugLogger, hostPort, type Logger } from '@distswarm/protocol'
import { AllowList, DEFAULT_ALLOW } from './allow.js'
import { HostCheck } from './host.js'
import { GatewayError } from './errors.js'
import { LAYOUT_CONF, parseDistfilesPath, type FileKey } from './layout.js'
import { IndexBodies, parseBinpkgsPath, type BinhostSource } from './binpkgs.js'
import { json, notModified, plain, serveFile, type ServedFile } from './serve.js'

/** The gateway's port unless told otherwise (next to the example data port 49738 and metrics port 49739). */
export const DEFAULT_HTTP_PORT = 49740
export const DEFAULT_HTTP_HOST = '127.0.0.1'
/** Open connections at most; more are dropped as they arrive. */
export const MAX_CONNECTIONS = 256
/** A client must send its whole request head within this (slowloris). */
export const HEADERS_TIMEOUT_MS = 10_000
/** A connection with no byte moving either way for this long is closed (the wait for a swarm fetch excepted). */
export const IDLE_TIMEOUT_MS = 60_000
/** Longest request target: Portage's are about 150 bytes (`/distfiles/ab/cdef/<128 hex>`). */
export const MAX_URL_LENGTH = 1024
/** Longest request head (request line and headers); more gets 431. */
export const MAX_HEADER_SIZE = 8 * 1024

/**
 * What the gateway needs from the agent. Keys are a BLAKE2B digest (128
 * lowercase hex) or a plain file name, already validated; a name stands
 * for what the Manifests pin it to, as for `distswarm fetch`.
 */
export interface GatewaySource {
  /** The verified file this box holds for `key`, or undefined. Memory only, no I/O. */
  local: (key: FileKey) => ServedFile | undefined
  /** Whether a connected peer advertises `key`: memory only, so a miss is a 404 at once. */
  held: (key: FileKey) => boolean
  /**
   * Fetches `key` through the agent's verified path (many sources, whole-file
   * check, publish into the cache dir, metrics) and resolves to the
   * published file. Rejects with a DistswarmError (`ERR_NOT_FOUND` when no
   * peer has it). Concurrent calls may share one download; the gateway also
   * shares one call among its own concurrent requests.
   */
  fetch: (key: FileKey) => Promise<ServedFile>
  /** The status document: what `distswarm status --json` prints. Served at `/api/status` when the page handler does not take it. */
  status: () => unknown
  /** The binhost served under `/binpkgs/`; without one, every path there is a 404. */
  binhost?: BinhostSource
}

/**
 * The status page's seam: offered every GET and HEAD request outside
 * `/distfiles/` and `/metrics` (`/`, `/api/*`, its assets), from an allowed
 * client. Returns true when it answered (it owns `res` then, and must end
 * it), false to let the gateway answer (`/api/status`, else 404). A throw or
 * rejection is a 500 when nothing was sent yet.
 */
export type PageHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>

/** Prometheus exposition, rendered at each scrape of /metrics. */
export interface MetricsSource {
  contentType: string
  render: () => string | Promise<string>
}

export interface GatewayInit {
  source: GatewaySource
  /** IP address to bind; default 127.0.0.1 (loopback only) */
  host?: string
  /** TCP port; 0 for any free one; default DEFAULT_HTTP_PORT (49740) */
  port?: number
  /** client addresses allowed (IP or ADDR/PREFIX); others get 403. Default loopback: 127.0.0.0/8, ::1 */
  allow?: readonly string[]
  /** the status page; without one, `/` is a 404 and `/api/status` still answers */
  page?: PageHandler
  /** served at /metrics; without one, /metrics is a 404 */
  metrics?: MetricsSource
  maxConnections?: number
  headersTimeoutMs?: number
  idleTimeoutMs?: number
  maxUrlLength?: number
  maxHeaderSize?: number
  logger?: Logger
}

const positiveInt = (option: string, v: unknown, min = 1): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw GatewayError.INVALID_OPTION(option, `must be an integer ≥ ${min}, got ${String(v)}`)
  return v
}

const keyText = (key: FileKey): string => 'blake2b' in key ? key.blake2b : `name:${key.name}`


export class Gateway {
  private readonly source: GatewaySource
  private readonly host: string
  private readonly port: number
  private readonly allow: AllowList
  private readonly hostCheck = new HostCheck()
  private readonly page: PageHandler | undefined
  private readonly metrics: MetricsSource | undefined
  private readonly maxConnections: number
  private readonly headersTimeoutMs: number
  private readonly idleTimeoutMs: number
  private readonly maxUrlLength: number
  private readonly maxHeaderSize: number
  private readonly log: Logger
  /** Swarm fetches under way, by key: concurrent requests for one file wait on one. */
  private readonly fetching = new Map<string, Promise<ServedFile>>()
  /** The binhost's index, encoded (and gzipped) once per document. */
  private readonly indexBodies = new IndexBodies()
  private server: Server | null = null
  private starting: Promise<void> | null = null
  private bound: { host: string, port: number } | null = null
  /** Last-Modified of layout.conf: when this gateway started. */
  private readonly layoutModified = new Date(Math.floor(Date.now() / 1000) * 1000)

  constructor (init: GatewayInit) {
    if (init === null || typeof init !== 'object') throw GatewayError.INVALID_OPTION('init', 'must be an object')
    const s = init.source as Partial<GatewaySource> | undefined
    if (!s || typeof s.local !== 'function' || typeof s.held !== 'function' || typeof s.fetch !== 'function' || typeof s.status !== 'function') {
      throw GatewayError.INVALID_OPTION('source', 'must implement GatewaySource (local, held, fetch, status)')
    }
    const b = s.binhost as Partial<BinhostSource> | undefined
    if (b !== undefined && (b === null || typeof b.index !== 'function' || typeof b.local !== 'function' || typeof b.fetch !== 'function')) {
      throw GatewayError.INVALID_OPTION('source.binhost', 'must implement BinhostSource (index, local, fetch)')
    }
    this.source = init.source
    this.host = init.host ?? DEFAULT_HTTP_HOST
    if (typeof this.host !== 'string' || this.host === '') throw GatewayError.INVALID_OPTION('host', 'must be an IP address')
    this.port = init.port ?? DEFAULT_HTTP_PORT
    if (!Number.isSafeInteger(this.port) || this.port < 0 || this.port > 65535) throw GatewayError.INVALID_OPTION('port', `must be 0-65535, got ${String(init.port)}`)
    if (init.allow !== undefined && !Array.isArray(init.allow)) throw GatewayError.INVALID_OPTION('allow', 'must be an array of addresses')
    this.allow = new AllowList(init.allow ?? DEFAULT_ALLOW)
    if (init.page !== undefined && typeof init.page !== 'function') throw GatewayError.INVALID_OPTION('page', 'must be a function (req, res) => boolean')
    this.page = init.page
    if (init.metrics !== undefined && (typeof init.metrics?.render !== 'function' || typeof init.metrics.contentType !== 'string')) {
      throw GatewayError.INVALID_OPTION('metrics', 'must be { contentType, render }')
    }
    this.metrics = init.metrics
    this.maxConnections = positiveInt('maxConnections', init.maxConnections ?? MAX_CONNECTIONS)
    this.headersTimeoutMs = positiveInt('headersTimeoutMs', init.headersTimeoutMs ?? HEADERS_TIMEOUT_MS)
    this.idleTimeoutMs = positiveInt('idleTimeoutMs', init.idleTimeoutMs ?? IDLE_TIMEOUT_MS)
    this.maxUrlLength = positiveInt('maxUrlLength', init.maxUrlLength ?? MAX_URL_LENGTH, 16)
    this.maxHeaderSize = positiveInt('maxHeaderSize', init.maxHeaderSize ?? MAX_HEADER_SIZE, 1024)
    this.log = init.logger ?? debugLogger('distswarm:gateway')
  }

  /** `http://host:port` once started (the bound port when 0 was asked), else null. */
  get url (): string | null {
    return this.bound ? `http://${hostPort(this.bound.host, this.bound.port)}` : null
  }

  /** "host:port" bound, or null. */
  get address (): string | null {
    return this.bound ? hostPort(this.bound.host, this.bound.port) : null
  }

  /** Binds and serves. Idempotent; rejects with ERR_HTTP_LISTEN when the address cannot be bound. */
  start (): Promise<void> {
    this.starting ??= this.listen().catch(async (err: unknown) => {
      this.starting = null
      await this.stop()
      throw err
    })
    return this.starting
  }

  private async listen (): Promise<void> {
    const server = this.server = createServer({
      maxHeaderSize: this.maxHeaderSize,
      headersTimeout: this.headersTimeoutMs,
      // A GET's request is its head: the whole request within the head's time.
      requestTimeout: this.headersTimeoutMs,
      // How often the headers timeout is checked (Node's default, 30 s, is far too coarse).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(this.headersTimeoutMs / 4)))
    }, (req, res) => { void this.handle(req, res) })
    server.maxConnections = this.maxConnections
    server.timeout = this.idleTimeoutMs
    server.keepAliveTimeout = Math.min(5_000, this.idleTimeoutMs)
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Node's own answers to a malformed or oversized request head, or a head that took too long.
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
      this.log.debug('http.client-error', { code: err.code, status })
      // Only on a socket nothing was written to yet: Node answers some bad requests itself (400 to an
      // HTTP/1.1 request without Host) and may still report the socket here; a second answer would
      // follow the first on the wire, a response to no request.
      if (socket.writable && !socket.destroyed && socket.bytesWritten === 0) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
      socket.destroySoon()
    })
    server.on('drop', (data?: { remoteAddress?: string }) => this.log.warn('http.connection-dropped', { from: data?.remoteAddress, max: this.maxConnections }))
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(GatewayError.LISTEN(hostPort(this.host, this.port), err)))
      server.listen({ host: this.host, port: this.port, exclusive: true }, resolve)
    })
    server.on('error', (err) => this.log.error('http.server-error', { message: err.message }))
    const a = server.address() as AddressInfo
    this.bound = { host: a.address, port: a.port }
    this.log.info('http.listening', { url: this.url, allow: this.allow.entries.join(',') })
  }

  /** Stops serving and drops open connections. Swarm fetches under way go on (the agent owns them). Idempotent. */
  async stop (): Promise<void> {
    const server = this.server
    this.server = null
    this.bound = null
    this.starting = null
    if (!server) return
    if (!server.listening) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res)
    } catch (err) {
      this.log.error('http.handler-failed', { url: (req.url ?? '').slice(0, 200), message: (err as Error).message })
      if (!res.headersSent) plain(res, 500, 'internal error')
      else res.destroy()
    }
  }

  private async route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.allow.allows(req.socket.remoteAddress)) {
      this.log.warn('http.refused', { from: req.socket.remoteAddress })
      return plain(res, 403, 'forbidden: this address is not in the gateway\'s allow list (http-allow)')
    }
    if (!this.hostCheck.allows(req.headers.host)) {
      this.log.warn('http.refused-host', { from: req.socket.remoteAddress, host: String(req.headers.host).slice(0, 100) })
      return plain(res, 403, 'forbidden: the Host header names neither an IP address, localhost nor this box (a DNS rebinding page?)')
    }
    const url = req.url ?? ''
    if (url.length > this.maxUrlLength) return plain(res, 414, 'URI too long')
    // Origin-form only ("/path"): an absolute or authority form is not for this server.
    if (!url.startsWith('/') || url.startsWith('//')) return plain(res, 400, 'bad request target')
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed', { allow: 'GET, HEAD' })
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (path === '/distfiles' || path.startsWith('/distfiles/')) return this.distfiles(req, res, path.slice('/distfiles/'.length))
    if (path === '/binpkgs' || path.startsWith('/binpkgs/')) return this.binpkgs(req, res, path.slice('/binpkgs/'.length))
    if (path === '/metrics') return this.serveMetrics(req, res)
    if (this.page && await this.page(req, res)) return
    if (path === '/api/status') return json(res, req, this.source.status())
    return plain(res, 404, 'not found')
  }

  private async serveMetrics (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.metrics) return plain(res, 404, 'not found')
    let body: string
    try {
      body = await this.metrics.render()
    } catch (err) {
      this.log.warn('http.metrics-failed', { message: (err as Error).message })
      return plain(res, 500, 'metrics unavailable')
    }
    res.writeHead(200, { 'content-type': this.metrics.contentType, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  private async distfiles (req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    const r = parseDistfilesPath(rest)
    if (r.kind === 'bad') return plain(res, r.status, r.reason)
    if (r.kind === 'layout') {
      res.setHeader('last-modified', this.layoutModified.toUTCString())
      if (notModified(req, this.layoutModified.getTime())) return void res.writeHead(304).end()
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(LAYOUT_CONF) })
      return void res.end(req.method === 'HEAD' ? undefined : LAYOUT_CONF)
    }
    const local = this.source.local(r.key)
    if (local && await serveFile(req, res, local, this.log)) return
    // A miss from memory: no connected peer advertises it.
    if (!this.source.held(r.key)) return plain(res, 404, 'not found: neither this box nor any connected peer has it')
    const key = r.key
    await this.fetchThenServe(req, res, keyText(key), () => this.source.fetch(key), (err, code) => {
      if (code === 'ERR_NOT_FOUND') return plain(res, 404, 'not found: no peer has it')
      this.log.warn('http.fetch-failed', { key: keyText(key).slice(0, 140), code, message: (err as Error).message })
      // Portage moves on to the next mirror after any failure.
      plain(res, 502, `fetching from peers failed: ${code ?? 'error'}`)
    })
  }

  /**
   * `/binpkgs/Packages` (and `.gz`): the merged index, 304 while its
   * TIMESTAMP is no newer than the client's copy. `/binpkgs/<PATH>`: the
   * build this box holds, else fetched from its holders and verified first.
   */
  private async binpkgs (req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    const r = parseBinpkgsPath(rest)
    if (r.kind === 'bad') return plain(res, r.status, r.reason)
    const binhost = this.source.binhost
    if (!binhost) return plain(res, 404, 'not found: this agent serves no binary packages')
    const index = binhost.index()
    if ('unavailable' in index) {
      // Portage falls back from a 404 of Packages.gz to Packages, and shows that answer's reason.
      if (r.kind === 'index' && r.gzip) return plain(res, 404, `no Packages.gz: ${index.unavailable}`)
      return plain(res, 503, `this box serves no builds: ${index.unavailable}`)
    }
    if (r.kind === 'index') {
      const modified = index.timestamp * 1000
      res.setHeader('last-modified', new Date(modified).toUTCString())
      res.setHeader('cache-control', 'no-cache')
      if (notModified(req, modified)) return void res.writeHead(304).end()
      const doc = 'body' in index ? index.body : index.text
      const body = r.gzip ? await this.indexBodies.gzip(doc) : this.indexBodies.body(doc)
      res.writeHead(200, { 'content-type': r.gzip ? 'application/gzip' : 'text/plain; charset=utf-8', 'content-length': body.length })
      return void res.end(req.method === 'HEAD' ? undefined : body)
    }
    const path = r.path
    const local = binhost.local(path)
    if (local && await serveFile(req, res, local, this.log)) return
    await this.fetchThenServe(req, res, `binpkg:${path}`, () => binhost.fetch(path), (err, code) => {
      if (code === 'ERR_NOT_FOUND') return plain(res, 404, 'not found: no build at this PATH in the index')
      const message = (err as Error).message.split('\n')[0]!.slice(0, 300)
      this.log.warn('http.binpkg-fetch-failed', { path, code, message })
      plain(res, 502, `fetching the build from peers failed: ${code ?? 'error'}: ${message}`)
    })
  }

  /**
   * Waits for a fetch (one per key, shared by concurrent requests), then
   * serves the file it resolved to; on a rejection `failed` answers.
   */
  private async fetchThenServe (req: IncomingMessage, res: ServerResponse, key: string, start: () => Promise<ServedFile>, failed: (err: unknown, code: string | undefined) => void): Promise<void> {
    let file: ServedFile
    // Waiting on the swarm moves no byte: not idle in the sense of the idle timeout.
    req.socket.setTimeout(0)
    try {
      file = await this.fetchShared(key, start)
    } catch (err) {
      return failed(err, (err as { code?: string }).code)
    } finally {
      if (!req.socket.destroyed) req.socket.setTimeout(this.idleTimeoutMs)
    }
    if (req.socket.destroyed) return
    if (!await serveFile(req, res, file, this.log)) plain(res, 404, 'not found: the fetched file is gone')
  }

  /** One fetch per key at a time, whoever asks; it runs to the end whether or not its clients stay. */
  private fetchShared (key: string, start: () => Promise<ServedFile>): Promise<ServedFile> {
    let p = this.fetching.get(key)
    if (!p) {
      p = start().finally(() => this.fetching.delete(key))
      this.fetching.set(key, p)
      // Nobody may be left to await it (every client gone): never an unhandled rejection.
      p.catch(() => {})
    }
    return p
  }
}
