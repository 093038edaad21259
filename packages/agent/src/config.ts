import { readdir } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { isIP } from 'node:net'
import { AllowList, DEFAULT_ALLOW, DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT } from '@distswarm/gateway'
import { MAX_AGENT_NAME_BYTES } from '@distswarm/protocol'
import { NETWORK_KEY_BYTES, parseNetworkKey, type HostPort } from '@distswarm/swarm'
import { AgentError } from './errors.js'
import { LOG_LEVELS, OPTIONS, type LogLevel } from './options.js'

/**
 * Everything an agent needs; `resolveConfig` fills the defaults. Values may
 * come from a config file, the environment or flags: resolveConfig checks
 * each at run time, whatever its static type says.
 */
export interface AgentOptions {
  /** Portage DISTDIRs to index and serve, never written. Default: /var/cache/distfiles. */
  distdirs?: string[]
  /** Where fetched files are published, for PORTAGE_RO_DISTDIRS. Default: /var/cache/distswarm (root) or $XDG_CACHE_HOME/distswarm. */
  cacheDir?: string
  /** Most bytes the cache dir may hold: a number, or text like "500M", "20G", "1.5T" (powers of 1024), or "none". Default: no limit. */
  cacheMaxSize?: number | string
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
  /** IP address to bind. Default: 127.0.0.1 when every bootstrap node is on loopback, else 0.0.0.0. */
  host?: string
  /** UDP port of the DHT socket (a number, or its decimal text). Default 0: any free port. */
  port?: number | string
  /** Ebuild repos whose Manifests name the distfiles. Default: every repo under /var/db/repos. */
  repos?: string[]
  /** TCP port of the fast data path between agents, or 'off'. Default 0: any free port. */
  dataPort?: number | string
  /** Agents to connect to directly at their data ports, "host:port": for a LAN without a DHT. */
  peers?: string[]
  /** Serve and advertise, never fetch. Default false. */
  seed?: boolean
  /** For the CLI's logger: error, warn, info or debug. Default info. */
  logLevel?: string
  /** First wait, in ms, before looking for peers again (it doubles up to 5 min). Default: the swarm's, 2000. */
  rediscoverMs?: number | string
  /** Silence (ms) after which a peer a transfer waits on is taken for dead. Default 3000. */
  deadPeerMs?: number | string
  /** "ip:port" to serve Prometheus metrics at (port 0: any free port), or 'off'. Default off. */
  metrics?: string
  /** "ip:port" of the HTTP gateway (port 0: any free port), or 'off'. Default 127.0.0.1:49740 (DEFAULT_HTTP_PORT). */
  http?: string
  /** Client addresses (IP or ADDR/PREFIX) the gateway answers. Default loopback only. */
  httpAllow?: string[]
  /** LAN discovery by multicast beacon: 'on' or 'off' (or a boolean). Default on, but off when bound to loopback. */
  lanDiscovery?: boolean | string
  /** Portage PKGDIRs whose builds this box offers. Default: Portage's PKGDIR when it exists. */
  pkgdirs?: string[]
  /** This box's CHOST. Default: the header of the first PKGDIR's Packages, else Portage's. */
  chost?: string
  /** The compatibility group of this box's builds. Default: the CHOST. */
  binpkgGroup?: string
  /** Builders (hex public keys) whose builds this box takes, or ["all-members"]. Default: none but its own. */
  binpkgTrust?: string[]
}

/** Where each option's value came from ("file:line", "--flag", "DISTSWARM_…"), for error messages. */
export type OptionOrigins = Partial<Record<keyof AgentOptions, string>>

export interface AgentConfig {
  distdirs: string[]
  cacheDir: string
  /** the cache dir's quota in bytes; null: no limit */
  cacheMaxBytes: number | null
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
  /** serves and advertises, never fetches */
  seed: boolean
  logLevel: LogLevel
  /** undefined: the swarm's default */
  rediscoverMs: number | undefined
  /** silence after which a peer a transfer waits on is dropped; undefined: the swarm's default */
  deadPeerMs: number | undefined
  /** where /metrics is served; null: nowhere */
  metrics: HostPort | null
  /** where the HTTP gateway listens; `given` false for the default (then a taken port is a warning, not a failure); null: off */
  http: (HostPort & { given: boolean }) | null
  /** client addresses the gateway answers */
  httpAllow: string[]
  /** beacons on the LAN (on loopback only when bound there) */
  lanDiscovery: boolean
  /** PKGDIRs whose builds this box offers; null or absent: Portage's PKGDIR when it exists (looked up at start) */
  pkgdirs?: string[] | null
  /** this box's CHOST; null or absent: from the first PKGDIR's Packages header, else Portage (at start) */
  chost?: string | null
  /** the compatibility group of this box's builds; null or absent: the CHOST */
  binpkgGroup?: string | null
  /** builders (hex public keys) whose builds this box takes, or 'all-members'; absent: none but its own */
  binpkgTrust?: 'all-members' | string[]
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

/** The config file `distswarm agent` reads and `distswarm init` writes, unless told otherwise. */
export function defaultConfigPath (env: NodeJS.ProcessEnv = process.env): string {
  return isRoot() ? '/etc/distswarm/distswarm.toml' : join(xdg(env, 'XDG_CONFIG_HOME', '.config'), 'distswarm', 'distswarm.toml')
}

/** Where an agent listens and the CLI looks, unless told otherwise. */
export function defaultControlPath (env: NodeJS.ProcessEnv = process.env): string {
  if (env.DISTSWARM_CONTROL) return env.DISTSWARM_CONTROL
  if (isRoot()) return '/run/distswarm/control.sock'
  const runtime = env.XDG_RUNTIME_DIR
  return runtime ? join(runtime, 'distswarm', 'control.sock') : `/tmp/distswarm-${process.getuid?.() ?? 'user'}/control.sock`
}

/** "host:port" or "[v6]:port" taken apart, any port 0-65535; null when it is neither. */
function splitHostPort (text: string): HostPort | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  return host && port <= 65535 ? { host, port } : null
}

/** An address to connect to: "host:port" or "[v6]:port", port 1-65535. */
export function parseHostPort (text: string): HostPort {
  const a = splitHostPort(text)
  if (!a || a.port < 1) throw AgentError.CONFIG(`invalid address ${JSON.stringify(text)}: expected HOST:PORT`)
  return a
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

/** Bounds on what a config may hold: far above any real LAN, far below what would hurt. */
const MAX_LIST = 256
const MAX_PATH_BYTES = 4096
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107

/** Why a value is refused; resolveConfig adds the option's name and origin. */
class Invalid extends Error {}
const invalid = (why: string): never => { throw new Invalid(why) }

/** A value for a message: short, and never the whole of a long string. */
function show (v: unknown): string {
  const text = v === undefined ? 'nothing' : typeof v === 'string' ? JSON.stringify(v) : v instanceof Date ? 'a date' : typeof v === 'object' && v !== null ? (Array.isArray(v) ? 'a list' : 'a table') : String(v)
  return text.length > 80 ? `${text.slice(0, 77)}…` : text
}

function text (v: unknown): string {
  return typeof v === 'string' ? v : invalid(`expected a string, got ${show(v)}`)
}

function list (v: unknown): unknown[] {
  // A lone string is a list of one: `distdir = "/x"` means what it says.
  const items = typeof v === 'string' ? [v] : Array.isArray(v) ? v : invalid(`expected a list, got ${show(v)}`)
  if (items.length > MAX_LIST) invalid(`${items.length} entries; at most ${MAX_LIST}`)
  return items
}

function unique<T> (items: T[], keyOf: (item: T) => string): T[] {
  const seen = new Set<string>()
  for (const item of items) {
    const k = keyOf(item)
    if (seen.has(k)) invalid(`${k} is listed twice`)
    seen.add(k)
  }
  return items
}

function absolutePath (v: unknown, maxBytes = MAX_PATH_BYTES): string {
  const p = text(v)
  if (p === '') invalid('empty path')
  if (p.includes('\0')) invalid('the path contains a NUL byte')
  if (!isAbsolute(p)) invalid(`${show(p)} is not an absolute path`)
  if (Buffer.byteLength(p) > maxBytes) invalid(`the path is longer than ${maxBytes} bytes`)
  return resolve(p) // absolute already: only drops trailing slashes, . and .. segments
}

const paths = (v: unknown): string[] => unique(list(v).map((p) => absolutePath(p)), (p) => p)

function addresses (v: unknown): HostPort[] {
  const parsed = list(v).map((a) => {
    try {
      return parseHostPort(text(a))
    } catch (err) {
      return invalid((err as Error).message)
    }
  })
  return unique(parsed, (a) => `${a.host}:${a.port}`)
}

function port (v: unknown): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535 ? n : invalid(`expected a port number 0-65535, got ${show(v)}`)
}

function milliseconds (v: unknown): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 && n <= 3_600_000 ? n : invalid(`expected milliseconds 1-3600000, got ${show(v)}`)
}

function dataPort (v: unknown): number | null {
  if (v === 'off') return null
  try {
    return port(v)
  } catch {
    return invalid(`expected a port number 0-65535 or "off", got ${show(v)}`)
  }
}

function networkKey (v: unknown): Buffer {
  // Never echo the value: it is the network's secret.
  if (typeof v !== 'string' || v === '') return invalid('expected 64 hex characters, the same on every box (`distswarm init` makes one)')
  if (!/^[0-9a-fA-F]*$/.test(v)) invalid('not hex: expected 64 characters 0-9 and a-f')
  if (v.length !== NETWORK_KEY_BYTES * 2) invalid(`${v.length} hex characters; expected ${NETWORK_KEY_BYTES * 2} (${NETWORK_KEY_BYTES} bytes)`)
  return parseNetworkKey(v)
}

function agentName (v: unknown): string {
  const name = text(v)
  if (name === '') invalid('empty name')
  if (Buffer.byteLength(name) > MAX_AGENT_NAME_BYTES) invalid(`longer than ${MAX_AGENT_NAME_BYTES} bytes`)
  if (/[\x00-\x1f\x7f]/.test(name)) invalid('the name contains control characters')
  return name
}

function ipAddress (v: unknown): string {
  const host = text(v)
  return isIP(host) !== 0 ? host : invalid(`expected an IP address to bind, got ${show(host)}`)
}

/** An address to bind: an IP address, not a name that might resolve to several. */
function bindAddress (v: unknown): HostPort | null {
  if (v === 'off') return null
  const bad = (): never => invalid(`expected IP:PORT ([IPv6]:PORT; port 0 for any free port) or "off", got ${show(v)}`)
  const a = splitHostPort(text(v))
  return a && isIP(a.host) !== 0 ? a : bad()
}

function allowList (v: unknown): string[] {
  const list = Array.isArray(v) ? v.map(text) : invalid(`expected a list of IP addresses or ADDR/PREFIX subnets, got ${show(v)}`)
  try {
    void new AllowList(list)
  } catch (err) {
    invalid((err as Error).message)
  }
  return list
}

/** The gateway's settings: the default address unless one was given (or "off"). */
function httpConfig (given: HostPort | null | undefined, allow: string[] | undefined): Pick<AgentConfig, 'http' | 'httpAllow'> {
  return {
    http: given === null ? null : given === undefined ? { host: DEFAULT_HTTP_HOST, port: DEFAULT_HTTP_PORT, given: false } : { ...given, given: true },
    httpAllow: allow ?? [...DEFAULT_ALLOW]
  }
}

const BOOLEANS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, on: true, off: false, 1: true, 0: false }

function boolean (v: unknown): boolean {
  const b = typeof v === 'boolean' ? v : typeof v === 'string' ? BOOLEANS[v.toLowerCase()] : undefined
  return b ?? invalid(`expected true or false, got ${show(v)}`)
}

const SIZE_UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

/** A byte count: a whole number, or a number with K, M, G or T (powers of 1024; "KiB" and "KB" mean K too); "none" is no limit. */
function byteSize (v: unknown): number | null {
  if (v === 'none') return null
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(v) : null
  const unit = m?.[2] === undefined ? 1 : SIZE_UNITS[m[2].toLowerCase()]!
  const bytes = typeof v === 'number' ? v : m ? Math.floor(Number(m[1]) * unit) : Number.NaN
  // A fraction of a byte means a typo, not a size.
  const fraction = typeof v === 'number' ? !Number.isInteger(v) : unit === 1 && m?.[1]?.includes('.') === true
  if (!Number.isSafeInteger(bytes) || bytes < 0 || fraction) return invalid(`expected a size like 500M, 20G, 1.5T or a number of bytes, or "none", got ${show(v)}`)
  return bytes
}

const MAX_WORD = 128

/** A CHOST or group name: one word Portage would write (letters, digits, `_.+-`). */
function word (v: unknown): string {
  const w = text(v)
  return /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(w) && w.length <= MAX_WORD ? w : invalid(`expected one word of letters, digits, _ . + - (at most ${MAX_WORD}), got ${show(w)}`)
}

/** The builders to trust: public keys (64 hex characters), or "all-members" alone. */
function trust (v: unknown): 'all-members' | string[] {
  const items = list(v).map(text)
  if (items.includes('all-members')) return items.length === 1 ? 'all-members' : invalid('"all-members" trusts every member: list it alone, without keys')
  const keys = items.map((k) => /^[0-9a-fA-F]{64}$/.test(k) ? k.toLowerCase() : invalid(`expected a builder's public key (64 hex characters, as \`distswarm status\` shows it) or "all-members", got ${show(k)}`))
  return unique(keys, (k) => k)
}

function logLevel (v: unknown): LogLevel {
  return (LOG_LEVELS as readonly unknown[]).includes(v) ? v as LogLevel : invalid(`expected one of ${LOG_LEVELS.join(', ')}, got ${show(v)}`)
}

/**
 * Checks every option and fills the defaults. Throws a ConfigError (code
 * ERR_CONFIG) naming the first bad option, and where it came from when
 * `origins` says.
 */
export function resolveConfig (opts: AgentOptions, origins: OptionOrigins = {}): AgentConfig {
  const get = <T>(key: keyof AgentOptions, parse: (v: unknown) => T): T | undefined => {
    const v = opts[key]
    if (v === undefined) return undefined
    try {
      return parse(v)
    } catch (err) {
      if (!(err instanceof Invalid)) throw err
      throw AgentError.BAD_OPTION(optionName(key), origins[key] ?? null, err.message)
    }
  }
  const key = get('networkKey', networkKey)
  if (!key) throw AgentError.BAD_OPTION('network-key', null, 'no network key: run `distswarm init`, or pass --network-key HEX (64 hex characters, the same on every box)')
  const bootstrap = get('bootstrap', addresses) ?? []
  const staticPeers = get('peers', addresses) ?? []
  const given = get('dataPort', dataPort)
  const data = given === undefined ? 0 : given // not `?? 0`: null ("off") stays null
  const all = [...bootstrap, ...staticPeers]
  // Bound to loopback, hyperdht neither announces nor probes other interfaces.
  const host = get('host', ipAddress) ?? (all.length > 0 && all.every((b) => isLoopback(b.host)) ? '127.0.0.1' : '0.0.0.0')
  // On loopback (a test swarm on one machine) only when asked; beacons then stay on loopback.
  const lanAsked = get('lanDiscovery', boolean)
  // Beacons carry the data port: without one there is nothing to announce.
  if (lanAsked === true && data === null) throw AgentError.BAD_OPTION('lan-discovery', origins.lanDiscovery ?? null, 'LAN discovery needs the data path: set data-port to a port (0 for any), not "off"')
  const lan = (lanAsked ?? !isLoopback(host)) && data !== null
  // Without a DHT or LAN discovery an agent needs someone to dial, or a fixed port others dial.
  if (bootstrap.length === 0 && staticPeers.length === 0 && !data && !lan) {
    throw AgentError.BAD_OPTION(null, null, 'no way to meet other agents: pass --bootstrap HOST:PORT (run `distswarm bootstrap` on one box of the LAN), or --peer HOST:PORT, or a fixed --data-port for others to dial, or leave --lan-discovery on')
  }
  return {
    distdirs: get('distdirs', paths) ?? ['/var/cache/distfiles'],
    cacheDir: get('cacheDir', absolutePath) ?? defaultCacheDir(),
    cacheMaxBytes: get('cacheMaxSize', byteSize) ?? null,
    stateDir: get('stateDir', absolutePath) ?? defaultStateDir(),
    bootstrap,
    networkKey: key,
    control: get('control', (v) => absolutePath(v, MAX_SOCKET_PATH_BYTES)) ?? defaultControlPath(),
    name: get('name', agentName) ?? hostname(),
    host,
    port: get('port', port) ?? 0,
    repos: get('repos', paths) ?? null,
    dataPort: data,
    staticPeers,
    seed: get('seed', boolean) ?? false,
    logLevel: get('logLevel', logLevel) ?? 'info',
    rediscoverMs: get('rediscoverMs', milliseconds),
    deadPeerMs: get('deadPeerMs', milliseconds),
    metrics: get('metrics', bindAddress) ?? null,
    ...httpConfig(get('http', bindAddress), get('httpAllow', allowList)),
    lanDiscovery: lan,
    pkgdirs: get('pkgdirs', paths) ?? null,
    chost: get('chost', word) ?? null,
    binpkgGroup: get('binpkgGroup', word) ?? null,
    binpkgTrust: get('binpkgTrust', trust) ?? []
  }
}

function optionName (key: keyof AgentOptions): string {
  return OPTIONS.find((o) => o.key === key)?.name ?? key
}

const REPOS_DIR = '/var/db/repos'

/** The ebuild repos to read Manifests from: the configured ones, else every dir under /var/db/repos. */
export async function findRepos (configured: string[] | null): Promise<string[]> {
  if (configured !== null) return configured
  const entries = await readdir(REPOS_DIR, { withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => join(REPOS_DIR, e.name)).sort()
}
