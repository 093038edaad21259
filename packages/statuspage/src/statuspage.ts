import type { IncomingMessage, ServerResponse } from 'node:http'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { loadPage, type Page } from './assets.js'
import { StatusPageError } from './errors.js'
import { RecentFetches, type FetchRecord, type FetchRecordInput } from './fetches.js'
import { TrafficHistory, type TrafficSample, type TrafficTotals } from './history.js'

export const SAMPLE_INTERVAL_MS = 10_000
export const LIVE_INTERVAL_MS = 1000
export const MAX_CLIENTS = 16
/** How long the agent may take to answer before a request gets 503: a hung agent must not hang the page's requests. */
export const ANSWER_TIMEOUT_MS = 10_000
/** Bytes a live client may leave unread before it is cut: a stalled tab must not grow the agent's memory. */
const MAX_CLIENT_BACKLOG = 1024 * 1024
/** How long a browser waits before it reconnects a dropped event stream. */
const RETRY_MS = 3000

/** What the page samples from a status: a subset of the agent's StatusResult. */
export interface SampledStatus {
  traffic?: { servedToPeers: number, fetchedFromPeers: number, fetchedUpstream: number }
  transfers?: ReadonlyArray<{ bytesDone: number }>
}

/** An emitter of the agent's fetch events (`fetched`, `fetch-failed`, and `upstream` when it reports one): the Agent itself will do. */
export interface FetchEventSource {
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
}

export interface StatusPageInit<S extends SampledStatus = SampledStatus> {
  /** The agent's status: what `/api/status` answers (as `distswarm status --json`), and what traffic is sampled from. */
  status: () => Promise<S>
  /** The agent's peers (as `distswarm peers --json`); without it the page lists none. */
  peers?: () => Promise<readonly unknown[]>
  /** Fetch events for the recent-fetches list. */
  events?: FetchEventSource
  /** The traffic ring; default a new one of an hour's samples. */
  history?: TrafficHistory
  /** The recent-fetches ring; default a new one. */
  fetches?: RecentFetches
  /** How often traffic is sampled. Default SAMPLE_INTERVAL_MS. */
  sampleIntervalMs?: number
  /** How often live clients get a new status. Default LIVE_INTERVAL_MS. */
  liveIntervalMs?: number
  /** Event-stream clients at a time; more get 503. Default MAX_CLIENTS. */
  maxClients?: number
  /** How long status() and peers() may take; past it the request gets 503. Default ANSWER_TIMEOUT_MS. */
  answerTimeoutMs?: number
  logger?: Logger
}

export interface StatusPage {
  /**
   * Answers a request for `/` or `/api/…` and returns true; returns false,
   * touching nothing, for any other path (the caller answers it).
   */
  handle: (req: IncomingMessage, res: ServerResponse) => boolean
  /** Reads the page's files and starts sampling. Idempotent. */
  start: () => Promise<void>
  /** Stops sampling and ends every event stream. Idempotent. */
  stop: () => Promise<void>
  /** Adds a fetch to the recent list (the gateway's mirror hits and misses, say). */
  recordFetch: (r: FetchRecordInput) => void
  readonly history: TrafficHistory
  readonly fetches: RecentFetches
  /** Event-stream clients connected now. */
  readonly clients: number
}

/** What `/api/snapshot` answers and each live `status` event carries. */
export interface Snapshot<S = unknown> {
  /** ISO 8601 */
  at: string
  status: S
  peers: unknown[]
  fetches: FetchRecord[]
}

function intOption (name: string, value: number | undefined, dflt: number, min: number, max: number): number {
  const v = value ?? dflt
  if (!Number.isSafeInteger(v) || v < min || v > max) throw StatusPageError.INVALID_OPTION(name, `must be an integer from ${min} to ${max}`)
  return v
}

export function totalsOf (s: SampledStatus): TrafficTotals {
  let inFlight = 0
  for (const t of s.transfers ?? []) inFlight += t.bytesDone
  return {
    fromPeers: (s.traffic?.fetchedFromPeers ?? 0) + inFlight,
    upstream: s.traffic?.fetchedUpstream ?? 0,
    served: s.traffic?.servedToPeers ?? 0
  }
}

function errorBody (err: unknown): { code: string, message: string } {
  const e = err as { code?: unknown, message?: unknown }
  return {
    code: typeof e?.code === 'string' ? e.code : 'ERR_INTERNAL',
    message: typeof e?.message === 'string' ? e.message : String(err)
  }
}

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store'
}

function send (req: IncomingMessage, res: ServerResponse, code: number, type: string, body: Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(code, { ...COMMON_HEADERS, 'Content-Type': type, 'Content-Length': String(body.length), ...headers })
  res.end(req.method === 'HEAD' ? undefined : body)
}

function sendJson (req: IncomingMessage, res: ServerResponse, code: number, value: unknown, headers?: Record<string, string>): void {
  send(req, res, code, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(value) + '\n', 'utf8'), headers)
}

/** An error answer: `{ error: { message, code? } }`, the code being the agent's when it failed. */
function sendError (req: IncomingMessage, res: ServerResponse, status: number, message: string, headers?: Record<string, string>, code?: string): void {
  sendJson(req, res, status, { error: code === undefined ? { message } : { code, message } }, headers)
}

/** `p`, or a rejection once `ms` pass first. */
async function inTime<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The path of a request target, or null for one that is not an origin-form path. */
function pathOf (url: string | undefined): string | null {
  if (url === undefined || !url.startsWith('/')) return null
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * The status page: an HTTP handler for `/` (the page: HTML, its CSS and
 * script inline, nothing else to load) and `/api/…` (its JSON and a
 * server-sent event stream), plus the traffic history it samples.
 */
export function createStatusPage<S extends SampledStatus> (init: StatusPageInit<S>): StatusPage {
  if (typeof init?.status !== 'function') throw StatusPageError.INVALID_OPTION('status', 'must be a function returning the status')
  if (init.peers !== undefined && typeof init.peers !== 'function') throw StatusPageError.INVALID_OPTION('peers', 'must be a function')
  if (init.events !== undefined && (typeof init.events?.on !== 'function' || typeof init.events.off !== 'function')) {
    throw StatusPageError.INVALID_OPTION('events', 'must have on() and off()')
  }
  const sampleMs = intOption('sampleIntervalMs', init.sampleIntervalMs, SAMPLE_INTERVAL_MS, 10, 3_600_000)
  const liveMs = intOption('liveIntervalMs', init.liveIntervalMs, LIVE_INTERVAL_MS, 10, 600_000)
  const maxClients = intOption('maxClients', init.maxClients, MAX_CLIENTS, 0, 10_000)
  const answerMs = intOption('answerTimeoutMs', init.answerTimeoutMs, ANSWER_TIMEOUT_MS, 10, 600_000)
  const log = init.logger ?? debugLogger('distswarm:statuspage')
  const history = init.history ?? new TrafficHistory()
  const fetches = init.fetches ?? new RecentFetches()
  const { status, peers, events } = init

  let page: Page | null = null
  let running = false
  let starting: Promise<void> | null = null
  let sampleTimer: NodeJS.Timeout | null = null
  let liveTimer: NodeJS.Timeout | null = null
  let liveBusy = false
  let failing = false
  const clients = new Set<ServerResponse>()

  const onFetched = (r: { name?: unknown, size?: unknown, source?: unknown, durationMs?: unknown }): void => {
    fetches.add({ name: String(r?.name ?? ''), outcome: r?.source === 'swarm' ? 'peers' : 'local', bytes: r?.size as number, durationMs: r?.durationMs as number })
  }
  const onFailed = (r: { query?: unknown, code?: unknown }): void => {
    fetches.add({ name: String(r?.query ?? ''), outcome: r?.code === 'ERR_NOT_FOUND' ? 'miss' : 'failed', code: String(r?.code ?? '') })
  }
  // A fetch answered before any download: the file was here, or no peer had it.
  const onLookup = (r: { name?: unknown, outcome?: unknown, bytes?: unknown }): void => {
    fetches.add({ name: String(r?.name ?? ''), outcome: r?.outcome === 'local' ? 'local' : 'miss', bytes: r?.bytes as number })
  }
  const onUpstream = (r: { name?: unknown, bytes?: unknown }): void => {
    fetches.add({ name: String(r?.name ?? ''), outcome: 'upstream', bytes: r?.bytes as number })
  }

  /** Status (and peers), with the first failure after a success logged as a warning. */
  const ask = async (): Promise<{ status: S, peers: unknown[] }> => {
    try {
      const [s, p] = await inTime(Promise.all([status(), peers ? peers() : Promise.resolve([])]), answerMs)
      if (failing) log.info('status.recovered')
      failing = false
      return { status: s, peers: [...p] }
    } catch (err) {
      if (!failing) log.warn('status.failed', errorBody(err))
      failing = true
      throw err
    }
  }

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
    for (const res of clients) {
      if (res.destroyed) continue // gone; its 'close' removes it
      if (res.writableLength > MAX_CLIENT_BACKLOG) {
        log.debug('client.cut', { backlog: res.writableLength })
        res.destroy()
        continue
      }
      res.write(frame)
    }
  }

  const sample = async (): Promise<void> => {
    try {
      const s = await inTime(status(), answerMs)
      const added = history.record(totalsOf(s), Date.now())
      if (added) broadcast('sample', added)
    } catch (err) {
      log.debug('sample.failed', errorBody(err)) // a gap in the chart; the live loop warns
    }
  }

  const live = async (): Promise<void> => {
    if (liveBusy) return // one question to the agent at a time, however many clients
    liveBusy = true
    try {
      const r = await ask()
      broadcast('status', { at: new Date().toISOString(), ...r, fetches: fetches.records() } satisfies Snapshot)
    } catch (err) {
      broadcast('failure', errorBody(err))
    } finally {
      liveBusy = false
    }
  }

  const stopLive = (): void => {
    if (liveTimer) clearInterval(liveTimer)
    liveTimer = null
  }

  const openStream = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= maxClients) {
      sendError(req, res, 503, `at most ${maxClients} live clients at a time`, { 'Retry-After': '10' })
      return
    }
    res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    clients.add(res)
    res.on('close', () => {
      clients.delete(res)
      if (clients.size === 0) stopLive()
    })
    res.write(`retry: ${RETRY_MS}\n\nevent: history\ndata: ${JSON.stringify({ intervalMs: sampleMs, capacity: history.capacity, samples: history.samples() })}\n\n`)
    if (liveTimer === null) {
      liveTimer = setInterval(() => { void live() }, liveMs)
    }
    void live()
  }

  const api = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    switch (path) {
      case '/api/status':
        return sendJson(req, res, 200, (await ask()).status)
      case '/api/peers':
        return sendJson(req, res, 200, (await ask()).peers)
      case '/api/snapshot':
        return sendJson(req, res, 200, { at: new Date().toISOString(), ...(await ask()), fetches: fetches.records() } satisfies Snapshot)
      case '/api/fetches':
        return sendJson(req, res, 200, fetches.records())
      case '/api/history':
        return sendJson(req, res, 200, { intervalMs: sampleMs, capacity: history.capacity, samples: history.samples() })
      case '/api/events':
        return openStream(req, res)
      default:
        return sendError(req, res, 404, `no such endpoint: ${path.slice(0, 100)}`)
    }
  }

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = pathOf(req.url)
    if (path === null || (path !== '/' && path !== '/api' && !path.startsWith('/api/'))) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, 405, `${String(req.method).slice(0, 16)} is not allowed here`, { Allow: 'GET, HEAD' })
      return true
    }
    if (!running || page === null) {
      sendError(req, res, 503, 'the status page is not running', { 'Retry-After': '5' })
      return true
    }
    if (path === '/') {
      send(req, res, 200, 'text/html; charset=utf-8', page.html, {
        'Content-Security-Policy': page.csp,
        'X-Frame-Options': 'DENY',
        'Cache-Control': 'no-cache'
      })
      return true
    }
    api(req, res, path).catch((err: unknown) => {
      if (res.headersSent) res.destroy()
      else {
        const e = errorBody(err)
        sendError(req, res, 503, `the agent did not answer: ${e.message}`, { 'Retry-After': '5' }, e.code)
      }
    })
    return true
  }

  const start = async (): Promise<void> => {
    if (running) return
    starting ??= (async () => {
      page = await loadPage()
      events?.on('fetched', onFetched)
      events?.on('fetch-failed', onFailed)
      events?.on('upstream', onUpstream)
      events?.on('lookup', onLookup)
      sampleTimer = setInterval(() => { void sample() }, sampleMs)
      sampleTimer.unref()
      running = true
      void sample() // the baseline
    })().finally(() => { starting = null })
    await starting
  }

  const stop = async (): Promise<void> => {
    await starting?.catch(() => {})
    if (!running) return
    running = false
    if (sampleTimer) clearInterval(sampleTimer)
    sampleTimer = null
    stopLive()
    events?.off('fetched', onFetched)
    events?.off('fetch-failed', onFailed)
    events?.off('upstream', onUpstream)
    events?.off('lookup', onLookup)
    for (const res of clients) res.end()
    clients.clear()
  }

  return {
    handle,
    start,
    stop,
    recordFetch: (r) => { fetches.add(r) },
    history,
    fetches,
    get clients () { return clients.size }
  }
}
