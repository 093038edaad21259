import { readdir } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { join } from 'node:path'
import { isIP } from 'node:net'
import { parseNetworkKey, type HostPort } from '@distswarm/swarm'
import { AgentError } from './errors.js'

/** Everything an agent needs; `resolveConfig` fills the defaults. */
export interface AgentOptions {
  /** Portage DISTDIRs to index and serve, never written. Default: /var/cache/distfiles. */
  distdirs?: string[]
  /** Where fetched files are published, for PORTAGE_RO_DISTDIRS. Default: /var/cache/distswarm (root) or $XDG_CACHE_HOME/distswarm. */
  cacheDir?: string
  /** Identity and state. Default: /var/lib/distswarm (root) or $XDG_STATE_HOME/distswarm. */
  stateDir?: string
  /** DHT bootstrap nodes, "host:port". Required: distswarm never joins the public DHT unasked. */
  bootstrap?: string[]
  /** 64 hex characters shared by the boxes of one network. Required. */
  networkKey?: string
  /** Control socket path. Default: see defaultControlPath(). */
  control?: string
  /** Name shown to peers. Default: the host name. */
  name?: string
  /** Address to bind. Default: 127.0.0.1 when every bootstrap node is on loopback, else 0.0.0.0. */
  host?: string
  /** UDP port of the DHT socket. Default 0: any free port. */
  port?: number
  /** Ebuild repos whose Manifests name the distfiles. Default: every repo under /var/db/repos. */
  repos?: string[]
  /** TCP port of the fast data path between agents, or 'off'. Default 0: any free port. */
  dataPort?: number | 'off'
  /** Agents to connect to directly at their data ports, "host:port": for a LAN without a DHT. */
  peers?: string[]
  /** First wait, in ms, before looking for peers again (it doubles up to 5 min). Default: the swarm's, 2000. */
  rediscoverMs?: number
}

export interface AgentConfig {
  distdirs: string[]
  cacheDir: string
  stateDir: string
  bootstrap: HostPort[]
  networkKey: Buffer
  control: string
  name: string
  host: string
  port: number
  /** null: every repo found under /var/db/repos at start */
  repos: string[] | null
  /** null: no fast path, transfers use the hyperswarm stream */
  dataPort: number | null
  staticPeers: HostPort[]
  /** undefined: the swarm's default */
  rediscoverMs?: number
}

const isRoot = (): boolean => process.getuid?.() === 0

function xdg (env: NodeJS.ProcessEnv, variable: string, fallback: string): string {
  const value = env[variable]
  return value && value.startsWith('/') ? value : join(homedir(), fallback)
}

/** Where the agent publishes fetched files unless told otherwise (PORTAGE_RO_DISTDIRS points here). */
export function defaultCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  return isRoot() ? '/var/cache/distswarm' : join(xdg(env, 'XDG_CACHE_HOME', '.cache'), 'distswarm')
}

export function defaultStateDir (env: NodeJS.ProcessEnv = process.env): string {
  return isRoot() ? '/var/lib/distswarm' : join(xdg(env, 'XDG_STATE_HOME', '.local/state'), 'distswarm')
}

/** Where an agent listens and the CLI looks, unless told otherwise. */
export function defaultControlPath (env: NodeJS.ProcessEnv = process.env): string {
  if (env.DISTSWARM_CONTROL) return env.DISTSWARM_CONTROL
  if (isRoot()) return '/run/distswarm/control.sock'
  const runtime = env.XDG_RUNTIME_DIR
  return runtime ? join(runtime, 'distswarm', 'control.sock') : `/tmp/distswarm-${process.getuid?.() ?? 'user'}/control.sock`
}

export function parseHostPort (text: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw AgentError.CONFIG(`invalid address ${JSON.stringify(text)}: expected HOST:PORT`)
  }
  return { host, port }
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

export function resolveConfig (opts: AgentOptions): AgentConfig {
  if (!opts.networkKey) throw AgentError.CONFIG('no network key: pass --network-key HEX (64 hex characters, the same on every box)')
  let networkKey: Buffer
  try {
    networkKey = parseNetworkKey(opts.networkKey)
  } catch (err) {
    throw AgentError.CONFIG((err as Error).message)
  }
  const bootstrap = (opts.bootstrap ?? []).map(parseHostPort)
  const staticPeers = (opts.peers ?? []).map(parseHostPort)
  const port = opts.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw AgentError.CONFIG(`invalid port ${port}`)
  const dataPort = opts.dataPort === 'off' ? null : opts.dataPort ?? 0
  if (dataPort !== null && (!Number.isInteger(dataPort) || dataPort < 0 || dataPort > 65535)) throw AgentError.CONFIG(`invalid data port ${String(opts.dataPort)}: expected 0-65535 or off`)
  // Without a DHT an agent needs someone to dial, or a fixed port others dial.
  if (bootstrap.length === 0 && staticPeers.length === 0 && !dataPort) {
    throw AgentError.CONFIG('no way to meet other agents: pass --bootstrap HOST:PORT (run `distswarm bootstrap` on one box of the LAN), or --peer HOST:PORT, or a fixed --data-port for others to dial')
  }
  if (opts.rediscoverMs !== undefined && !(Number.isSafeInteger(opts.rediscoverMs) && opts.rediscoverMs > 0)) {
    throw AgentError.CONFIG(`invalid rediscovery wait ${String(opts.rediscoverMs)}: expected a positive number of milliseconds`)
  }
  const addresses = [...bootstrap, ...staticPeers]
  return {
    distdirs: opts.distdirs ?? ['/var/cache/distfiles'],
    cacheDir: opts.cacheDir ?? defaultCacheDir(),
    stateDir: opts.stateDir ?? defaultStateDir(),
    bootstrap,
    networkKey,
    control: opts.control ?? defaultControlPath(),
    name: opts.name ?? hostname(),
    // Bound to loopback, hyperdht neither announces nor probes other interfaces.
    host: opts.host ?? (addresses.length > 0 && addresses.every((b) => isLoopback(b.host)) ? '127.0.0.1' : '0.0.0.0'),
    port,
    repos: opts.repos ?? null,
    dataPort,
    staticPeers,
    rediscoverMs: opts.rediscoverMs
  }
}

const REPOS_DIR = '/var/db/repos'

/** The ebuild repos to read Manifests from: the configured ones, else every dir under /var/db/repos. */
export async function findRepos (configured: string[] | null): Promise<string[]> {
  if (configured !== null) return configured
  const entries = await readdir(REPOS_DIR, { withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => join(REPOS_DIR, e.name)).sort()
}
