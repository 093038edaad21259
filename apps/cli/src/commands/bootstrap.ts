import { once } from 'node:events'
import { parseHostPort, startBootstrapNode } from '@distswarm/agent'
import { defineCommand, UsageError, writeJson } from '../command.js'
import { createLogger } from '../log.js'

/** The bootstrap node's port unless told otherwise; `distswarm init` points boxes at it. */
export const DEFAULT_BOOTSTRAP_PORT = 49737

export const bootstrapCommand = defineCommand({
  name: 'bootstrap',
  summary: 'run a DHT bootstrap node, for a LAN without internet (one per network is enough)',
  usage: 'distswarm bootstrap [--host ADDR] [--port PORT]',
  examples: [
    'distswarm bootstrap --host 192.168.1.10 --port 49737',
    'distswarm bootstrap --host 127.0.0.1 --port 0 --json   # any free port, printed as JSON'
  ],
  options: {
    host: { type: 'string', description: 'address to bind (default 0.0.0.0)' },
    port: { type: 'string', description: 'UDP port (default 49737; 0 for any free port)' },
    bootstrap: { type: 'string', multiple: true, description: 'other bootstrap nodes HOST:PORT, to join several' },
    json: { type: 'boolean', description: 'print the bound address as one JSON line on stdout' },
    help: { type: 'boolean', short: 'h', description: 'show this help' }
  },
  async run ({ values }, io) {
    const port = Number(values.port ?? DEFAULT_BOOTSTRAP_PORT)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bootstrap: invalid port ${String(values.port)}`)
    const host = (values.host as string | undefined) ?? '0.0.0.0'
    const others = ((values.bootstrap as string[] | undefined) ?? []).map(parseHostPort)
    const node = await startBootstrapNode({ host, port, bootstrap: others })
    try {
      const addr = node.address()
      if (values.json) writeJson(io, { host: addr.host, port: addr.port })
      else io.stdout.write(`bootstrap node listening on ${addr.host}:${addr.port}\n`)
      createLogger(io).info('bootstrap.ready', { address: `${addr.host}:${addr.port}` })
      if (!io.signal.aborted) await once(io.signal, 'abort')
    } finally {
      await node.destroy()
    }
    return 0
  }
})
