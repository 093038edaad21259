/**
 * The agent's Prometheus metrics, kept with prom-client: counters it keeps as
 * things happen, gauges read from its state at scrape time, and prom-client's
 * standard process and Node.js metrics (CPU, memory, event-loop lag, GC).
 * Served at /metrics by the HTTP gateway, and by a server of its own at
 * `--metrics ADDR:PORT`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import createDebug from 'debug'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { hostPort } from '@distswarm/protocol'
import type { HostPort } from '@distswarm/swarm'
import { AgentError } from './errors.js'

const log = createDebug('distswarm:metrics')

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const PREFIX = 'distswarm_'

/** Seconds: a few KiB on a LAN takes tens of milliseconds, a chromium tarball over a slow link minutes. */
export const TRANSFER_BUCKETS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/** Scrapes are small and quick: a client that takes longer than this, or holds more connections, is cut off. */
const REQUEST_TIMEOUT_MS = 10_000
const MAX_CONNECTIONS = 32

export const FETCH_RESULTS = ['local', 'swarm', 'not_found', 'failed'] as const
export type FetchOutcome = typeof FETCH_RESULTS[number]

/** What the agent's state says at scrape time. */
export interface MetricsSnapshot {
  /** authenticated peers by how transfers with them travel */
  peers: Record<'tcp' | 'hyperswarm', number>
  files: number
  bytes: number
  /** bytes exchanged with peers since start, closed connections included */
  traffic: { sent: number, received: number }
  /** file bytes uploaded from partial downloads (swarming) since start */
  relayed: number
}

/** A histogram of transfer durations, with prom-client's observe(). */
export function transferHistogram (registers: Registry[] = []): Histogram {
  return new Histogram({
    name: `${PREFIX}transfer_duration_seconds`,
    help: 'Swarm fetches that published a file: seconds from request to publish.',
    buckets: [...TRANSFER_BUCKETS],
    registers
  })
}

/** The counters an agent keeps; gauges come from a MetricsSnapshot at scrape time. */
export class Metrics {
  readonly fetches: Record<FetchOutcome, number> = { local: 0, swarm: 0, not_found: 0, failed: 0 }
  /** whole-file checks of downloads that failed */
  verificationFailures = 0
  /** times a peer was blamed for bytes that failed verification */
  peerFaults = 0
  /** times a peer was banned for too many faults */
  peerBans = 0
  readonly registry = new Registry()
  /** swarm fetches that published a file, from request to publish */
  readonly transferSeconds = transferHistogram([this.registry])
  readonly contentType = METRICS_CONTENT_TYPE
  /** The snapshot of the scrape under way, read by the gauges' collect(). */
  private snapshot: MetricsSnapshot | null = null
  private defaults = false

  constructor () {
    const m = this
    const registers = [this.registry]
    const snap = (): MetricsSnapshot => m.snapshot ?? { peers: { tcp: 0, hyperswarm: 0 }, files: 0, bytes: 0, traffic: { sent: 0, received: 0 }, relayed: 0 }
    // Values kept elsewhere are copied in at each scrape: set for gauges, reset + inc for counters.
    const counter = (name: string, help: string, value: () => number): void => {
      const c: Counter = new Counter({ name: PREFIX + name, help, registers, collect () { c.reset(); c.inc(value()) } })
    }
    new Gauge({
      name: `${PREFIX}peers_connected`,
      help: 'Authenticated peers connected, by how transfers with them travel.',
      labelNames: ['path'],
      registers,
      collect () { for (const path of ['tcp', 'hyperswarm'] as const) this.set({ path }, snap().peers[path]) }
    })
    new Gauge({ name: `${PREFIX}inventory_files`, help: 'Files this agent has indexed (distdirs and cache dir).', registers, collect () { this.set(snap().files) } })
    new Gauge({ name: `${PREFIX}inventory_bytes`, help: 'Bytes of the files this agent has indexed.', registers, collect () { this.set(snap().bytes) } })
    const bytes: Counter = new Counter({
      name: `${PREFIX}bytes_total`,
      help: 'Protocol bytes exchanged with peers, every connection (closed ones too).',
      labelNames: ['direction'],
      registers,
      collect () { bytes.reset(); for (const direction of ['sent', 'received'] as const) bytes.inc({ direction }, snap().traffic[direction]) }
    })
    const fetches: Counter = new Counter({
      name: `${PREFIX}fetches_total`,
      help: 'Fetch requests, by result: had it (local), fetched it (swarm), no peer had it (not_found), anything else (failed).',
      labelNames: ['result'],
      registers,
      collect () { fetches.reset(); for (const result of FETCH_RESULTS) fetches.inc({ result }, m.fetches[result]) }
    })
    counter('verification_failures_total', 'Downloaded files that failed their whole-file size and hash check.', () => m.verificationFailures)
    counter('peer_faults_total', 'Times a peer was blamed for bytes that failed verification.', () => m.peerFaults)
    counter('peer_bans_total', 'Times a peer was banned for too many faults.', () => m.peerBans)
    counter('relayed_bytes_total', 'File bytes uploaded to peers from the partial files of downloads under way (swarming).', () => snap().relayed)
  }

  /** The exposition text of these counters, the snapshot and the process metrics. */
  async render (s: MetricsSnapshot): Promise<string> {
    // Started at the first scrape, not in the constructor: they observe the event loop and GC.
    if (!this.defaults) {
      this.defaults = true
      collectDefaultMetrics({ register: this.registry })
    }
    this.snapshot = s
    // prom-client puts an empty line between families and writes NaN as "Nan" (an event-loop
    // mean before its first sample): both valid for Prometheus, both made plain for stricter parsers.
    return (await this.registry.metrics()).replace(/\n{2,}/g, '\n').replace(/ Nan$/gm, ' NaN')
  }
}

/** "host:port", brackets around an IPv6 host: what parseHostPort reads back. */
export const formatHostPort = (a: HostPort): string => hostPort(a.host, a.port)

/**
 * Serves `render()` at /metrics on `at` (port 0: any free port), GET and
 * HEAD only; 404 for any other path. Resolves to the server and the address
 * it is bound to.
 */
export async function startMetricsServer (at: HostPort, render: () => string | Promise<string>): Promise<{ server: Server, address: HostPort }> {
  const server = createServer((req, res) => { void answer(req, res) })
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const plain = (status: number, text: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`)
    }
    if ((req.url ?? '').split('?')[0] !== '/metrics') return plain(404, 'not found: metrics are at /metrics')
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed', { allow: 'GET, HEAD' })
    let body: string
    try {
      body = await render()
    } catch (err) {
      log('rendering metrics failed: %s', (err as Error).message)
      return plain(500, 'metrics unavailable')
    }
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.headersTimeout = REQUEST_TIMEOUT_MS
  server.maxConnections = MAX_CONNECTIONS
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(AgentError.METRICS_LISTEN(formatHostPort(at), err)))
    server.listen({ host: at.host, port: at.port, exclusive: true }, resolve)
  })
  const bound = server.address() as AddressInfo
  log('metrics at http://%s/metrics', formatHostPort({ host: bound.address, port: bound.port }))
  return { server, address: { host: bound.address, port: bound.port } }
}

/** Stops serving and drops open (keep-alive) connections. */
export async function stopMetricsServer (server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
