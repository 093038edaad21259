/**
 * The agent's side of the HTTP gateway (@distswarm/gateway): a GatewaySource
 * over the agent's public methods (inventory, Manifest pins, the swarm, the
 * verified fetch, the binhost), and starting the gateway with the agent, with the status
 * page (@distswarm/statuspage) mounted on it for `/` and `/api/*`.
 */
import { Gateway, type BinhostSource, type FileKey, type GatewaySource, type ServedFile } from '@distswarm/gateway'
import { debugLogger, type Logger } from '@distswarm/protocol'
import { createStatusPage, type FetchEventSource, type StatusPage } from '@distswarm/statuspage'
import type { FetchParams, FetchResult, PeerInfo, StatusResult, WhereResult } from './api.js'
import type { AgentConfig } from './config.js'
import { METRICS_CONTENT_TYPE } from './metrics.js'

/** What the gateway uses of an Agent. */
export interface GatewayHost {
  readonly config: Pick<AgentConfig, 'seed'>
  where: (query: string) => WhereResult
  fetch: (params: FetchParams) => Promise<FetchResult>
  status: () => StatusResult
  /** the BLAKE2B the Manifests pin a name to (as fetch() uses), else the query itself; throws ERR_AMBIGUOUS */
  pinnedQuery: (query: string) => string
  /** the binhost served at /binpkgs/ (its merged index, held and fetched builds) */
  binhost?: () => BinhostSource
}

const served = (f: { path: string | null, size: number, name: string, blake2b: string }): ServedFile | undefined =>
  f.path === null ? undefined : { path: f.path, size: f.size, name: f.name, blake2b: f.blake2b }

/** The agent as the gateway sees it: lookups from memory, fetches through agent.fetch() (shared, verified, published, counted). */
export function gatewaySource (agent: GatewayHost): GatewaySource {
  // A name the Manifests pin to two held digests is no file to serve: undefined (a 404; Portage moves on).
  const query = (key: FileKey): string | undefined => {
    if ('blake2b' in key) return key.blake2b
    try {
      return agent.pinnedQuery(key.name)
    } catch {
      return undefined
    }
  }
  return {
    local: (key) => {
      const q = query(key)
      const f = q === undefined ? undefined : agent.where(q).local[0]
      return f ? served(f) : undefined
    },
    // A seed never fetches: what it lacks is a 404 at once.
    held: (key) => {
      const q = query(key)
      return !agent.config.seed && q !== undefined && agent.where(q).remote.length > 0
    },
    fetch: async (key) => {
      const r = await agent.fetch({ query: query(key) ?? ('name' in key ? key.name : key.blake2b) })
      const f = served(r)
      if (!f) throw new Error(`fetch of ${r.name} returned no path`)
      return f
    },
    status: () => agent.status(),
    ...(agent.binhost ? { binhost: agent.binhost() } : {})
  }
}

export interface StartGatewayInit {
  /** renders /metrics (the agent's Metrics over its current state) */
  metrics: () => Promise<string>
  /** the connected peers, for the status page (as `distswarm peers --json`) */
  peers?: () => Promise<PeerInfo[]>
  /** the agent's fetch events, for the status page's recent fetches */
  events?: FetchEventSource
  logger?: Logger
}

/** The gateway with the status page mounted on it: stopped together. */
export class AgentHttp {
  constructor (readonly gateway: Gateway, readonly page: StatusPage) {}

  get url (): string | null { return this.gateway.url }
  get address (): string | null { return this.gateway.address }

  /** Ends the page's event streams, then the server. Idempotent. */
  async stop (): Promise<void> {
    await this.page.stop()
    await this.gateway.stop()
  }
}

/**
 * Starts the gateway `config.http` asks for; null when it is off, or when
 * the default port is taken (a second agent on this box: a warning, while
 * an address given explicitly that cannot be bound fails the start with
 * ERR_HTTP_LISTEN).
 */
export async function startGateway (agent: GatewayHost, config: Pick<AgentConfig, 'http' | 'httpAllow'>, init: StartGatewayInit): Promise<AgentHttp | null> {
  if (config.http === null) return null
  const logger = init.logger ?? debugLogger('distswarm:gateway')
  const page = createStatusPage({ status: async () => agent.status(), peers: init.peers, events: init.events, logger: logger.child('page') })
  const gateway = new Gateway({
    host: config.http.host,
    port: config.http.port,
    allow: config.httpAllow,
    source: gatewaySource(agent),
    metrics: { contentType: METRICS_CONTENT_TYPE, render: init.metrics },
    page: (req, res) => page.handle(req, res),
    logger
  })
  try {
    await gateway.start()
  } catch (err) {
    if (config.http.given || (err as { code?: string }).code !== 'ERR_HTTP_LISTEN') throw err
    logger.warn('http.default-port-taken', { address: `${config.http.host}:${config.http.port}`, fix: 'set http = "127.0.0.1:PORT" (or "off") for this agent', why: (err as Error).message })
    return null
  }
  try {
    await page.start()
  } catch (err) {
    // a failed start stops what it started
    await gateway.stop()
    throw err
  }
  return new AgentHttp(gateway, page)
}
