import { ControlClient, defaultControlPath, type FetchResult } from '@distswarm/agent'
import { CLIENT_OPTIONS, defineCommand, exitCodeOf, writeJson, type Command, type IO } from '../command.js'
import { formatBytes, formatDuration, formatRate, shortKey, table } from '../format.js'

interface QuerySpec<R> {
  name: string
  summary: string
  usage: string
  examples: string[]
  positionals?: [number, number]
  /** Asks the agent. */
  ask: (client: ControlClient, positionals: string[]) => Promise<R>
  /** Prints the result for people (without --json). */
  show: (result: R, io: IO) => void
  /** Exit code for a result. Default 0. */
  exitCode?: (result: R) => number
}

/** A command that asks the running agent one thing and prints the answer, as text or with --json. */
function defineQuery<R> (spec: QuerySpec<R>): Command {
  return defineCommand({
    name: spec.name,
    summary: spec.summary,
    usage: spec.usage,
    examples: spec.examples,
    positionals: spec.positionals,
    options: CLIENT_OPTIONS,
    async run ({ values, positionals }, io) {
      const client = await ControlClient.connect((values.control as string | undefined) ?? defaultControlPath(io.env))
      let result: R
      try {
        result = await spec.ask(client, positionals)
      } finally {
        client.close()
      }
      if (values.json) writeJson(io, result)
      else spec.show(result, io)
      return spec.exitCode?.(result) ?? 0
    }
  })
}

export const statusCommand = defineQuery({
  name: 'status',
  summary: "show this box's agent: identity, network, inventory, peers, fetches",
  usage: 'distswarm status [--control PATH] [--json]',
  examples: ['distswarm status', 'distswarm status --json | jq .peers'],
  ask: (c) => c.call('status', {}),
  show (s, io) {
    const f = s.fetches
    const rows = [
      ['agent', `${s.name} (${shortKey(s.publicKey)})`],
      ['network', s.network],
      ['dht', s.dhtAddress ?? '-'],
      ['control', s.control],
      ['cache dir', s.cacheDir],
      ['distdirs', s.distdirs.join(' ') || '-'],
      ['files', `${s.files} (${formatBytes(s.bytes)})`],
      ['peers', String(s.peers)],
      ['fetches', `${f.completed} done, ${f.failed} failed, ${f.inFlight} in flight, ${formatBytes(f.bytesFetched)} fetched`],
      ['uptime', formatDuration(s.uptimeMs)]
    ]
    io.stdout.write(rows.map(([k, v]) => `${k!.padEnd(10)} ${v}`).join('\n') + '\n')
  }
})

export const peersCommand = defineQuery({
  name: 'peers',
  summary: 'list the authenticated peers this agent is connected to',
  usage: 'distswarm peers [--control PATH] [--json]',
  examples: ['distswarm peers'],
  ask: (c) => c.call('peers', {}),
  show (peers, io) {
    io.stdout.write(peers.length === 0
      ? 'no peers\n'
      : table(['NAME', 'KEY', 'ADDRESS', 'FILES', 'SENT', 'RECEIVED', 'CONNECTED'], peers.map((p) => [
        p.name || '?', shortKey(p.publicKey), p.address ?? '-', String(p.files), formatBytes(p.bytesSent), formatBytes(p.bytesReceived), p.connectedAt
      ])))
  }
})

export const whereCommand = defineQuery({
  name: 'where',
  summary: 'show which boxes hold a distfile, by name or BLAKE2B digest; exits 1 when none does',
  usage: 'distswarm where NAME|DIGEST [--control PATH] [--json]',
  examples: ['distswarm where firefox-128.0esr.source.tar.xz'],
  positionals: [1, 1],
  ask: (c, [query]) => c.call('where', { query: query! }),
  show (w, io) {
    const rows = [
      ...w.local.map((f) => ['this box', f.name, formatBytes(f.size), f.blake2b.slice(0, 16), f.path]),
      ...w.remote.flatMap((f) => f.holders.map((h) => [`${h.name || '?'} (${shortKey(h.publicKey)})`, f.name, formatBytes(f.size), f.blake2b.slice(0, 16), '']))
    ]
    io.stdout.write(rows.length ? table(['HOLDER', 'NAME', 'SIZE', 'BLAKE2B', 'PATH'], rows) : `nobody has ${w.query}\n`)
  },
  exitCode: (w) => w.local.length + w.remote.length > 0 ? 0 : 1
})

type Outcome = { query: string, ok: true, result: FetchResult } | { query: string, ok: false, error: { code: string, message: string } }

export const fetchCommand = defineQuery({
  name: 'fetch',
  summary: 'fetch distfiles from peers into the cache dir, verified; exits 0 only when all are in place',
  usage: 'distswarm fetch NAME|DIGEST… [--control PATH] [--json]',
  examples: ['distswarm fetch linux-6.6.tar.xz', 'distswarm fetch --json gcc-14.2.0.tar.xz binutils-2.43.tar.xz'],
  positionals: [1, Infinity],
  ask: (c, queries) => Promise.all(queries.map(async (query): Promise<Outcome> => {
    try {
      return { query, ok: true, result: await c.call('fetch', { query }) }
    } catch (err) {
      if (exitCodeOf(err) === 3) throw err
      const e = err as { code?: string, message?: string }
      return { query, ok: false, error: { code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(err) } }
    }
  })),
  show (outcomes, io) {
    for (const o of outcomes) {
      if (o.ok) {
        const r = o.result
        const how = r.source === 'local' ? 'already here' : `fetched in ${formatDuration(r.durationMs)} (${formatRate(r.size, r.durationMs)})`
        io.stdout.write(`${r.name}  ${formatBytes(r.size)}  ${how}  ${r.path}\n`)
      } else {
        io.stderr.write(`distswarm: fetch ${o.query}: ${o.error.message}\n`)
      }
    }
  },
  exitCode: (outcomes) => outcomes.every((o) => o.ok) ? 0 : 1
})
