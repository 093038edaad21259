/**
 * The agent's Prometheus metrics: counters it keeps as things happen, gauges
 * read from its state at scrape time, written in the text exposition format
 * (version 0.0.4) and served over HTTP at /metrics.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import createDebug from 'debug'
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
}

/** Observations counted into buckets, each an upper bound (le); the last, +Inf, takes the rest. */
export class Histogram {
  readonly bounds: readonly number[]
  /** per bucket, not cumulative; one more than bounds: +Inf */
  private readonly counts: number[]
  sum = 0
  count = 0

  constructor (bounds: readonly number[]) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe (value: number): void {
    const i = this.bounds.findIndex((le) => value <= le)
    this.counts[i === -1 ? this.bounds.length : i]!++
    this.sum += value
    this.count++
  }

  /** Cumulative counts by upper bound, +Inf last: the _bucket series. */
  cumulative (): Array<[number, number]> {
    let total = 0
    return [...this.bounds, Infinity].map((le, i): [number, number] => [le, total += this.counts[i]!])
  }
}

type Labels = Record<string, string>

/** A sample value as Prometheus parses it (Go's ParseFloat, with +Inf, -Inf, NaN). */
function formatValue (v: number): string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v)
}

// Label values and help texts are literals of this file, none with a backslash,
// quote or newline: nothing to escape.
function sample (name: string, labels: Labels | null, value: number): string {
  const l = labels ? Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',') : ''
  return `${name}${l ? `{${l}}` : ''} ${formatValue(value)}`
}

/** One metric family: its HELP and TYPE lines, then its samples. */
function family (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: string[]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples]
}

function simple (name: string, type: 'counter' | 'gauge', help: string, values: Array<[Labels | null, number]>): string[] {
  const full = PREFIX + name
  return family(full, type, help, values.map(([labels, v]) => sample(full, labels, v)))
}

function histogram (name: string, help: string, h: Histogram): string[] {
  const full = PREFIX + name
  return family(full, 'histogram', help, [
    ...h.cumulative().map(([le, n]) => sample(`${full}_bucket`, { le: formatValue(le) }, n)),
    sample(`${full}_sum`, null, h.sum),
    sample(`${full}_count`, null, h.count)
  ])
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
  /** swarm fetches that published a file, from request to publish */
  readonly transferSeconds = new Histogram(TRANSFER_BUCKETS)

  /** The exposition text of these counters and the snapshot. */
  render (s: MetricsSnapshot): string {
    return [
      ...simple('peers_connected', 'gauge', 'Authenticated peers connected, by how transfers with them travel.',
        [[{ path: 'tcp' }, s.peers.tcp], [{ path: 'hyperswarm' }, s.peers.hyperswarm]]),
      ...simple('inventory_files', 'gauge', 'Files this agent has indexed (distdirs and cache dir).', [[null, s.files]]),
      ...simple('inventory_bytes', 'gauge', 'Bytes of the files this agent has indexed.', [[null, s.bytes]]),
      ...simple('bytes_total', 'counter', 'Protocol bytes exchanged with peers, every connection (closed ones too).',
        [[{ direction: 'sent' }, s.traffic.sent], [{ direction: 'received' }, s.traffic.received]]),
      ...simple('fetches_total', 'counter', 'Fetch requests, by result: had it (local), fetched it (swarm), no peer had it (not_found), anything else (failed).',
        FETCH_RESULTS.map((r) => [{ result: r }, this.fetches[r]])),
      ...simple('verification_failures_total', 'counter', 'Downloaded files that failed their whole-file size and hash check.', [[null, this.verificationFailures]]),
      ...simple('peer_faults_total', 'counter', 'Times a peer was blamed for bytes that failed verification.', [[null, this.peerFaults]]),
      ...simple('peer_bans_total', 'counter', 'Times a peer was banned for too many faults.', [[null, this.peerBans]]),
      ...histogram('transfer_duration_seconds', 'Swarm fetches that published a file: seconds from request to publish.', this.transferSeconds)
    ].join('\n') + '\n'
  }
}

/** "host:port", brackets around an IPv6 host: what parseHostPort reads back. */
export const formatHostPort = (a: HostPort): string => a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`

/**
 * Serves `render()` at /metrics on `at` (port 0: any free port), GET and
 * HEAD only; 404 for any other path. Resolves to the server and the address
 * it is bound to.
 */
export async function startMetricsServer (at: HostPort, render: () => string): Promise<{ server: Server, address: HostPort }> {
  const server = createServer((req, res) => {
    const plain = (status: number, text: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`)
    }
    if ((req.url ?? '').split('?')[0] !== '/metrics') return plain(404, 'not found: metrics are at /metrics')
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed', { allow: 'GET, HEAD' })
    let body: string
    try {
      body = render()
    } catch (err) {
      log('rendering metrics failed: %s', (err as Error).message)
      return plain(500, 'metrics unavailable')
    }
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
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
