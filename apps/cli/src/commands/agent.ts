import { once } from 'node:events'
import { resolve } from 'node:path'
import { Agent, envName, loadOptions, OPTIONS, resolveConfig, type OptionDef } from '@distswarm/agent'
import { CONFIG_ARG, defineCommand, type ArgSpec, type IO } from '../command.js'
import { shortKey } from '../format.js'
import { createLogger, routeDebugLogs } from '../log.js'

/** The flags of agent options (every one of OPTIONS but those left out), declared from the agent's own table. */
export function optionFlags (except: string[] = []): Record<string, ArgSpec> {
  const flag = (o: OptionDef): ArgSpec => {
    const description = `${o.description.split(/(?<=\.) /)[0]} (env ${envName(o)}; default: ${o.default})`
    return o.boolean ? { type: 'boolean', description } : { type: 'string', multiple: o.list, valueName: o.value, description }
  }
  return Object.fromEntries(OPTIONS.filter((o) => !except.includes(o.name)).map((o) => [o.name, flag(o)]))
}

const AGENT_ARGS = { config: CONFIG_ARG, ...optionFlags() }

/** Runs an agent until SIGINT/SIGTERM, from config file < DISTSWARM_* < flags; `forced` wins over all. */
async function runAgent (values: { config?: string | undefined } & Record<string, unknown>, io: IO, forced: Record<string, unknown> = {}): Promise<number> {
  const loaded = await loadOptions({
    config: values.config === undefined ? undefined : resolve(values.config),
    env: io.env,
    flags: { ...values, ...forced }
  })
  const config = resolveConfig(loaded.options, loaded.origins)
  const log = createLogger(io, config.logLevel)
  routeDebugLogs(io, config.logLevel)
  const agent = new Agent(config, { logger: log })
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
  meta: {
    name: 'agent',
    summary: 'run the agent in the foreground: index, advertise, fetch and serve distfiles',
    usage: 'distswarm agent [--config FILE] [options]   (the config file, DISTSWARM_* and flags, in rising priority)',
    examples: [
      'distswarm agent                                         # everything from the config file (distswarm init writes it)',
      'distswarm agent --config /etc/distswarm/lan.toml --log-level debug',
      'distswarm agent --bootstrap 192.168.1.10:49737 --network-key "$(cat /etc/distswarm/network.key)"',
      'DISTSWARM_NETWORK_KEY=… distswarm agent --bootstrap buildhost:49737 --distdir /var/cache/distfiles',
      'distswarm agent --data-port 49738 …                     # no DHT: on the build host…',
      'distswarm agent --peer buildhost:49738 …                # …and on every other box',
      'distswarm agent --host 192.168.1.10                     # listen on one address only (default: every interface)'
    ]
  },
  args: AGENT_ARGS,
  run: ({ values }, io) => runAgent(values, io)
})

export const seedCommand = defineCommand({
  meta: {
    name: 'seed',
    summary: 'run the agent in seed mode: index, advertise and serve distfiles, never fetch (same options as agent)',
    usage: 'distswarm seed [--config FILE] [--distdir DIR]… [options]',
    examples: [
      'distswarm seed --distdir /var/cache/distfiles --distdir /mnt/mirror/distfiles   # serve a read-only mirror too',
      'distswarm agent --seed …                                # the same'
    ]
  },
  args: AGENT_ARGS,
  run: ({ values }, io) => runAgent(values, io, { seed: true })
})
