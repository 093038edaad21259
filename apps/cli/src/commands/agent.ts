import { once } from 'node:events'
import { resolve } from 'node:path'
import { Agent, envName, loadOptions, OPTIONS, resolveConfig, type OptionDef } from '@distswarm/agent'
import { defineCommand, type Command, type IO, type OptionSpec } from '../command.js'
import { shortKey } from '../format.js'
import { createLogger, routeDebugLogs } from '../log.js'

/** The flags of agent options (every one of OPTIONS but those left out), for parseArgs and --help. */
export function optionFlags (except: string[] = []): Record<string, OptionSpec> {
  const flag = (o: OptionDef): OptionSpec => ({
    type: o.boolean ? 'boolean' : 'string',
    multiple: o.list,
    valueName: o.value,
    description: `${o.description.split(/(?<=\.) /)[0]} (env ${envName(o)}; default: ${o.default})`
  })
  return Object.fromEntries(OPTIONS.filter((o) => !except.includes(o.name)).map((o) => [o.name, flag(o)]))
}

export const CONFIG_OPTION = {
  type: 'string',
  valueName: 'FILE',
  description: 'config file (env DISTSWARM_CONFIG; default /etc/distswarm/distswarm.toml as root, else $XDG_CONFIG_HOME/distswarm/distswarm.toml)'
} as const satisfies OptionSpec

const AGENT_OPTIONS = {
  config: CONFIG_OPTION,
  ...optionFlags(),
  help: { type: 'boolean', short: 'h', description: 'show this help' }
} satisfies Record<string, OptionSpec>

/** Runs an agent until SIGINT/SIGTERM, from config file < DISTSWARM_* < flags; `forced` wins over all. */
async function runAgent (values: Record<string, unknown>, io: IO, forced: Record<string, unknown> = {}): Promise<number> {
  const loaded = await loadOptions({
    config: typeof values.config === 'string' ? resolve(values.config) : undefined,
    env: io.env,
    flags: { ...values, ...forced }
  })
  const config = resolveConfig(loaded.options, loaded.origins)
  const log = createLogger(io, config.logLevel)
  routeDebugLogs(io, config.logLevel)
  const agent = new Agent(config)
  agent.on('peer-ready', (p) => log.info('peer.ready', { name: p.name, key: shortKey(p.publicKey), address: p.address }))
  agent.on('peer-closed', (p) => log.info('peer.closed', { name: p.name, key: shortKey(p.publicKey) }))
  agent.on('fetched', (r) => log.info('fetch.done', { name: r.name, size: r.size, ms: r.durationMs, path: r.path }))
  agent.on('fetch-failed', (f) => log.warn('fetch.failed', { name: f.query, code: f.code, why: f.message }))
  try {
    await agent.start()
    const s = agent.status()
    log.info('agent.ready', {
      name: s.name, key: shortKey(s.publicKey), network: s.network, dht: s.dhtAddress, control: s.control, http: s.url ?? 'off', files: s.files, seed: s.seed || undefined, config: loaded.configPath
    })
    if (!io.signal.aborted) await once(io.signal, 'abort')
    log.info('agent.stopping')
  } finally {
    await agent.close()
  }
  return 0
}

export const agentCommand = defineCommand({
  name: 'agent',
  summary: 'run the agent in the foreground: index, advertise, fetch and serve distfiles',
  usage: 'distswarm agent [--config FILE] [options]   (the config file, DISTSWARM_* and flags, in rising priority)',
  examples: [
    'distswarm agent                                         # everything from the config file (distswarm init writes it)',
    'distswarm agent --config /etc/distswarm/lan.toml --log-level debug',
    'distswarm agent --bootstrap 192.168.1.10:49737 --network-key "$(cat /etc/distswarm/network.key)"',
    'DISTSWARM_NETWORK_KEY=… distswarm agent --bootstrap buildhost:49737 --distdir /var/cache/distfiles',
    'distswarm agent --data-port 49738 …                     # no DHT: on the build host…',
    'distswarm agent --peer buildhost:49738 …                # …and on every other box'
  ],
  options: AGENT_OPTIONS,
  run: ({ values }, io) => runAgent(values, io)
})

export const seedCommand: Command = defineCommand({
  name: 'seed',
  summary: 'run the agent in seed mode: index, advertise and serve distfiles, never fetch (same options as agent)',
  usage: 'distswarm seed [--config FILE] [--distdir DIR]… [options]',
  examples: [
    'distswarm seed --distdir /var/cache/distfiles --distdir /mnt/mirror/distfiles   # serve a read-only mirror too',
    'distswarm agent --seed …                                # the same'
  ],
  options: AGENT_OPTIONS,
  run: ({ values }, io) => runAgent(values, io, { seed: true })
})
