import { once } from 'node:events'
import { Agent, resolveConfig } from '@distswarm/agent'
import { defineCommand } from '../command.js'
import { shortKey } from '../format.js'
import { logEvent } from '../log.js'

export const agentCommand = defineCommand({
  name: 'agent',
  summary: 'run the agent in the foreground: index, advertise, fetch and serve distfiles',
  usage: 'distswarm agent (--bootstrap HOST:PORT | --peer HOST:PORT | --data-port PORT) --network-key HEX [options]',
  examples: [
    'distswarm agent --bootstrap 192.168.1.10:49737 --network-key "$(cat /etc/distswarm/network.key)"',
    'DISTSWARM_NETWORK_KEY=… distswarm agent --bootstrap buildhost:49737 --distdir /var/cache/distfiles',
    'distswarm agent --data-port 49738 …                     # no DHT: on the build host…',
    'distswarm agent --peer buildhost:49738 …                # …and on every other box'
  ],
  options: {
    distdir: { type: 'string', multiple: true, description: 'Portage DISTDIR to index and serve (default /var/cache/distfiles)' },
    'cache-dir': { type: 'string', description: 'where fetched files are published, for PORTAGE_RO_DISTDIRS' },
    'state-dir': { type: 'string', description: 'identity and state' },
    bootstrap: { type: 'string', multiple: true, description: 'DHT bootstrap node HOST:PORT' },
    peer: { type: 'string', multiple: true, description: "another agent's data port HOST:PORT, to connect to directly (a LAN without a DHT)" },
    'network-key': { type: 'string', description: '64 hex characters shared by the network (env DISTSWARM_NETWORK_KEY)' },
    control: { type: 'string', description: 'control socket path (env DISTSWARM_CONTROL)' },
    name: { type: 'string', description: 'name shown to peers (default: host name)' },
    host: { type: 'string', description: 'address to bind (default 127.0.0.1 when all bootstrap nodes are on loopback, else 0.0.0.0)' },
    port: { type: 'string', description: 'UDP port of the DHT socket (default: any free port)' },
    'data-port': { type: 'string', description: 'TCP port of the fast data path between agents, or off (default: any free port)' },
    repo: { type: 'string', multiple: true, description: 'ebuild repo whose Manifests name the distfiles (default: every repo under /var/db/repos)' },
    'rediscover-ms': { type: 'string', description: 'first wait before looking for peers again, doubling up to 5 min (default 2000)' },
    help: { type: 'boolean', short: 'h', description: 'show this help' }
  },
  async run ({ values }, io) {
    const v = values as Record<string, string | string[] | undefined>
    const config = resolveConfig({
      distdirs: v.distdir as string[] | undefined,
      cacheDir: v['cache-dir'] as string | undefined,
      stateDir: v['state-dir'] as string | undefined,
      bootstrap: v.bootstrap as string[] | undefined,
      networkKey: (v['network-key'] as string | undefined) ?? io.env.DISTSWARM_NETWORK_KEY,
      control: (v.control as string | undefined) ?? io.env.DISTSWARM_CONTROL,
      name: v.name as string | undefined,
      host: v.host as string | undefined,
      port: v.port === undefined ? undefined : Number(v.port),
      repos: v.repo as string[] | undefined,
      dataPort: v['data-port'] === undefined ? undefined : v['data-port'] === 'off' ? 'off' : Number(v['data-port']),
      peers: v.peer as string[] | undefined,
      rediscoverMs: v['rediscover-ms'] === undefined ? undefined : Number(v['rediscover-ms'])
    })
    const agent = new Agent(config)
    agent.on('peer-ready', (p) => logEvent(io, 'peer.ready', { name: p.name, key: shortKey(p.publicKey), address: p.address }))
    agent.on('peer-closed', (p) => logEvent(io, 'peer.closed', { name: p.name, key: shortKey(p.publicKey) }))
    agent.on('fetched', (r) => logEvent(io, 'fetch.done', { name: r.name, size: r.size, ms: r.durationMs, path: r.path }))
    agent.on('fetch-failed', (f) => logEvent(io, 'fetch.failed', { name: f.query, code: f.code, why: f.message }))
    try {
      await agent.start()
      const s = agent.status()
      logEvent(io, 'agent.ready', { name: s.name, key: shortKey(s.publicKey), network: s.network, dht: s.dhtAddress, control: s.control, files: s.files })
      if (!io.signal.aborted) await once(io.signal, 'abort')
      logEvent(io, 'agent.stopping')
    } finally {
      await agent.close()
    }
    return 0
  }
})
