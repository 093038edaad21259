import type { AgentOptions } from './config.js'

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/**
 * One agent option. Its `name` is the same everywhere: the config file key,
 * the flag (`--name`) and the environment variable (`DISTSWARM_NAME`, dashes
 * as underscores).
 */
export interface OptionDef {
  name: string
  /** the field of AgentOptions it sets */
  key: keyof AgentOptions
  /** several values: a repeatable flag, a TOML array, a space- or comma-separated variable */
  list: boolean
  /** a switch: a flag without a value, a TOML boolean */
  boolean: boolean
  /** what the value looks like, for --help */
  value: string
  description: string
  /** the default, in words */
  default: string
  /** a value for the example config file */
  example: unknown
}

const def = (d: Omit<OptionDef, 'list' | 'boolean'> & Partial<Pick<OptionDef, 'list' | 'boolean'>>): OptionDef =>
  ({ list: false, boolean: false, ...d })

/** Every option of `distswarm agent`, in the order the config file documents them. */
export const OPTIONS: readonly OptionDef[] = [
  def({
    name: 'network-key',
    key: 'networkKey',
    value: 'HEX',
    description: 'The network\'s secret: 64 hex characters (32 bytes), the same on every box. Required. `distswarm init` makes one.',
    default: 'none',
    // Deliberately invalid, so that nobody runs a network on a key printed in the docs.
    example: 'REPLACE-WITH-THE-KEY-FROM-distswarm-init'
  }),
  def({
    name: 'bootstrap',
    key: 'bootstrap',
    list: true,
    value: 'HOST:PORT',
    description: 'DHT bootstrap nodes (`distswarm bootstrap` on one box of the LAN). distswarm never joins the public DHT.',
    default: 'none; then `peer` or a fixed `data-port` is needed',
    example: ['192.168.1.10:49737']
  }),
  def({
    name: 'peer',
    key: 'peers',
    list: true,
    value: 'HOST:PORT',
    description: "Other agents' data ports, to connect to directly: a LAN without a bootstrap node.",
    default: 'none',
    example: ['192.168.1.10:49738']
  }),
  def({
    name: 'distdir',
    key: 'distdirs',
    list: true,
    value: 'DIR',
    description: 'Portage DISTDIRs to index and serve. Only read, never written.',
    default: '/var/cache/distfiles',
    example: ['/var/cache/distfiles']
  }),
  def({
    name: 'cache-dir',
    key: 'cacheDir',
    value: 'DIR',
    description: 'Where fetched files are published, for PORTAGE_RO_DISTDIRS.',
    default: '/var/cache/distswarm as root, else $XDG_CACHE_HOME/distswarm',
    example: '/var/cache/distswarm'
  }),
  def({
    name: 'cache-max-size',
    key: 'cacheMaxSize',
    value: 'SIZE',
    description: 'Most bytes the cache dir may hold: 500M, 20G, 1.5T (K, M, G, T: powers of 1024), a number of bytes, or "none" for no limit. Files in distdirs do not count and are never deleted. Over it, the least recently used files leave the cache dir after each fetch and every 5 minutes: first names no Manifest lists, last the files no connected peer holds (`distswarm gc` shows which). The binary packages fetched from peers (kept in the state dir, not the cache dir) have a quota of the same size of their own.',
    default: 'none (no limit)',
    example: '20G'
  }),
  def({
    name: 'state-dir',
    key: 'stateDir',
    value: 'DIR',
    description: "The agent's identity, its hash index, when each cache file was last used, and the binary packages fetched from peers (binpkgs/).",
    default: '/var/lib/distswarm as root, else $XDG_STATE_HOME/distswarm',
    example: '/var/lib/distswarm'
  }),
  def({
    name: 'repo',
    key: 'repos',
    list: true,
    value: 'DIR',
    description: 'Ebuild repos whose Manifests name the distfiles (their BLAKE2B, SHA512 and size).',
    default: 'every repo under /var/db/repos',
    example: ['/var/db/repos/gentoo']
  }),
  def({
    name: 'pkgdir',
    key: 'pkgdirs',
    list: true,
    value: 'DIR',
    description: 'Portage PKGDIRs whose binary packages (the builds their Packages index lists) this box offers the network, signed with its key. Only read, never written. An empty list (`pkgdir = []`) offers none.',
    default: "Portage's PKGDIR (`portageq envvar PKGDIR`, else /var/cache/binpkgs) when it exists",
    example: ['/var/cache/binpkgs']
  }),
  def({
    name: 'chost',
    key: 'chost',
    value: 'CHOST',
    description: "The CHOST of this box: the binhost (/binpkgs/ on the gateway) offers only builds for it. Without one known, the binhost serves no builds and says why (`distswarm binpkgs`).",
    default: "the CHOST of the first pkgdir's Packages, else Portage's (`portageq envvar CHOST`)",
    example: 'x86_64-pc-linux-gnu'
  }),
  def({
    name: 'binpkg-group',
    key: 'binpkgGroup',
    value: 'NAME',
    description: 'The compatibility group of this box\'s builds, advertised with them; the binhost offers only builds of its own group. Give boxes whose builds differ in ways CHOST does not say (-march=native on different CPUs) different groups.',
    default: 'the CHOST',
    example: 'x86_64-pc-linux-gnu'
  }),
  def({
    name: 'binpkg-trust',
    key: 'binpkgTrust',
    list: true,
    value: 'KEY|all-members',
    description: 'The builders (their public keys, 64 hex characters: `distswarm status` shows a box\'s) whose binary packages this box takes. A binary package runs as root where it is installed: trust is explicit. "all-members" takes every member\'s builds, as a deliberate choice. This box\'s own builds are always taken.',
    default: 'none (only this box\'s own builds)',
    // A key nobody holds: the one to put here is the build host's (`distswarm init --join` offers it).
    example: ['0123456789abcdef'.repeat(4)]
  }),
  def({
    name: 'control',
    key: 'control',
    value: 'PATH',
    description: 'The control socket the CLI and Portage\'s FETCHCOMMAND talk to (mode 0660: the agent\'s user and group).',
    default: '$DISTSWARM_CONTROL, else /run/distswarm/control.sock as root, else $XDG_RUNTIME_DIR/distswarm/control.sock',
    example: '/run/distswarm/control.sock'
  }),
  def({
    name: 'name',
    key: 'name',
    value: 'NAME',
    description: 'The name peers see (at most 64 bytes).',
    default: 'the host name',
    example: 'buildhost'
  }),
  def({
    name: 'host',
    key: 'host',
    value: 'ADDR',
    description: 'The IP address the DHT and data sockets bind to.',
    default: '127.0.0.1 when every bootstrap and peer address is on loopback, else 0.0.0.0',
    example: '0.0.0.0'
  }),
  def({
    name: 'port',
    key: 'port',
    value: 'PORT',
    description: 'UDP port of the DHT socket; 0 for any free port.',
    default: '0',
    example: 0
  }),
  def({
    name: 'rediscover-ms',
    key: 'rediscoverMs',
    value: 'MS',
    description: 'First wait before looking for peers again; each wait doubles, up to 5 minutes. (The agent also re-announces at once when the DHT forgets it, as after a bootstrap node restart.)',
    default: '2000',
    example: 2000
  }),
  def({
    name: 'dead-peer-ms',
    key: 'deadPeerMs',
    value: 'MS',
    description: 'A peer that sends nothing, not even a keepalive answer, for this long while a transfer waits on it is taken for dead: its connection is dropped and its pieces go to other holders. Raise it on links that stall for seconds.',
    default: '3000',
    example: 3000
  }),
  def({
    name: 'data-port',
    key: 'dataPort',
    value: 'PORT|off',
    description: 'TCP port of the fast data path between agents; 0 for any free port; "off" to send over the hyperswarm stream. Give a fixed one when other boxes list this one as a `peer`.',
    default: '0',
    example: 49738
  }),
  def({
    name: 'lan-discovery',
    key: 'lanDiscovery',
    value: 'on|off',
    description: 'Find the agents of this network on the LAN with no bootstrap node and no `peer`: a beacon on a link-local multicast group (UDP 49736, TTL 1) carrying a tag derived from the network key (rotating every 10 minutes; never the key) and this agent\'s data port. Members also tell each other the addresses of the members they know, whatever this says.',
    default: 'on; off when bound to loopback (`on` then beacons on loopback only)',
    example: 'on'
  }),
  def({
    name: 'seed',
    key: 'seed',
    boolean: true,
    value: '',
    description: 'Seed only: index, advertise and serve, never fetch (a fetch request is refused with ERR_SEED_ONLY).',
    default: 'false',
    example: false
  }),
  def({
    name: 'metrics',
    key: 'metrics',
    value: 'ADDR:PORT|off',
    description: 'Serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics, bound to that IP address only; port 0 for any free port (`distswarm status --json` shows it as metricsAddress). The HTTP gateway (`http`) serves the same at /metrics: this is for a separate address.',
    default: 'off',
    example: '127.0.0.1:49739'
  }),
  def({
    name: 'http',
    key: 'http',
    value: 'ADDR:PORT|off',
    description: 'The HTTP gateway: a Gentoo mirror backed by the network at http://ADDR:PORT/distfiles/ (for GENTOO_MIRRORS; `distswarm portage-config` prints the line), the status page at /, Prometheus metrics at /metrics. Bound to that IP address only; port 0 for any free port; "off" for none. A LAN address exposes every file the network holds, the status (names, keys, addresses of peers) and metrics to the clients `http-allow` lets in. When the default port is taken (a second agent on the box), the agent warns and runs without it.',
    default: '127.0.0.1:49740',
    example: '127.0.0.1:49740'
  }),
  def({
    name: 'http-allow',
    key: 'httpAllow',
    list: true,
    value: 'ADDR[/PREFIX]',
    description: 'Client addresses the HTTP gateway answers (IP addresses or subnets); others get 403. List the LAN, e.g. 192.168.1.0/24, when `http` is bound to a LAN address.',
    default: '127.0.0.0/8 and ::1 (this box only)',
    example: ['127.0.0.0/8', '::1']
  }),
  def({
    name: 'log-level',
    key: 'logLevel',
    value: LOG_LEVELS.join('|'),
    description: 'What the agent logs to stderr: error, warn, info, or debug (adds the libraries\' distswarm:* debug logs).',
    default: 'info',
    example: 'info'
  })
]

export const OPTION_BY_NAME: ReadonlyMap<string, OptionDef> = new Map(OPTIONS.map((o) => [o.name, o]))

/** DISTSWARM_DATA_PORT for data-port. */
export const envName = (o: OptionDef): string => `DISTSWARM_${o.name.toUpperCase().replaceAll('-', '_')}`
