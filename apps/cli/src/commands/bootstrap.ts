import { once } from 'node:events'
import { parseHostPort, startBootstrapNode } from '@distswarm/agent'
import { defineCommand, UsageError, writeJson } from '../command.js'
import { createLogger } from '../log.js'

/** The bootstrap node's port unless told otherwise; `distswarm init` points boxes at it. */
export const DEFAULT_BOOTSTRAP_PORT = 49737

export const bootstrapCommand = defineCommand({
  meta: {
    name: 'bootstrap',
    summary: 'run a DHT bootstrap node, for a LAN without internet (one per network is enough)',
    usage: 'distswarm bootstrap [--host ADDR] [--port PORT] [--bootstrap HOST:PORT]… [--json]',
    examples: [
      'distswarm bootstrap --host 192.168.1.10 --port 49737',
      'distswarm bootstrap --host 127.0.0.1 --port 0 --json   # any free port, printed as JSON'
    ]
  },
  args: {
    host: { type: 'string', valueName: 'ADDR', description: 'address to bind (default 0.0.0.0)' },
    port: { type: 'string', valueName: 'PORT', description: 'UDP port (default 49737; 0 for any free port)' },
    bootstrap: { type: 'string', multiple: true, valueName: 'HOST:PORT', description: 'other bootstrap nodes HOST:PORT, to join several' },
    json: { type: 'boolean', description: 'print the bound address as one JSON line on stdout' }
  },
  async run ({ values }, io) {
    const port = values.port === undefined ? DEFAULT_BOOTSTRAP_PORT : Number(values.port)
    if (!/^\d+$/.test(values.port ?? '0') || port > 65535) throw new UsageError(`invalid port ${JSON.stringify(values.port)}: expected 0 to 65535`)
    const host = values.host ?? '0.0.0.0'
    const others = (values.bootstrap ?? []).map(parseHostPort)
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
