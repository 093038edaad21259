import { ControlClient, defaultControlPath, type FetchResult } from '@distswarm/agent'
import { CLIENT_OPTIONS, defineCommand, exitCodeOf, writeJson, type IO } from '../command.js'
import { formatBytes, formatDuration, formatRate, shortKey, table } from '../format.js'

async function withClient<T> (values: Record<string, unknown>, io: IO, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const client = await ControlClient.connect((values.control as string | undefined) ?? defaultControlPath(io.env))
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: "show this box's agent: identity, network, inventory, peers, fetches",
  usage: 'distswarm status [--control PATH] [--json]',
  examples: ['distswarm status', 'distswarm status --json | jq .peers'],
  options: CLIENT_OPTIONS,
  async run ({ values }, io) {
    const s = await withClient(values, io, (c) => c.call('status', {}))
    if (values.json) {
      writeJson(io, s)
      return 0
    }
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
    return 0
  }
})

export const peersCommand = defineCommand({
  name: 'peers',
  summary: 'list the authenticated peers this agent is connected to',
  usage: 'distswarm peers [--control PATH] [--json]',
  examples: ['distswarm peers'],
  options: CLIENT_OPTIONS,
  async run ({ values }, io) {
    const peers = await withClient(values, io, (c) => c.call('peers', {}))
    if (values.json) {
      writeJson(io, peers)
      return 0
    }
    if (peers.length === 0) {
      io.stdout.write('no peers\n')
      return 0
    }
    io.stdout.write(table(['NAME', 'KEY', 'ADDRESS', 'FILES', 'SENT', 'RECEIVED', 'CONNECTED'], peers.map((p) => [
      p.name || '?', shortKey(p.publicKey), p.address ?? '-', String(p.files), formatBytes(p.bytesSent), formatBytes(p.bytesReceived), p.connectedAt
    ])))
    return 0
  }
})

export const whereCommand = defineCommand({
  name: 'where',
  summary: 'show which boxes hold a distfile, by name or BLAKE2B digest',
  usage: 'distswarm where NAME|DIGEST [--control PATH] [--json]',
  examples: ['distswarm where firefox-128.0esr.source.tar.xz'],
  options: CLIENT_OPTIONS,
  positionals: [1, 1],
  async run ({ values, positionals }, io) {
    const w = await withClient(values, io, (c) => c.call('where', { query: positionals[0]! }))
    if (values.json) writeJson(io, w)
    else {
      const rows = [
        ...w.local.map((f) => ['this box', f.name, formatBytes(f.size), f.blake2b.slice(0, 16), f.path]),
        ...w.remote.flatMap((f) => f.holders.map((h) => [`${h.name || '?'} (${shortKey(h.publicKey)})`, f.name, formatBytes(f.size), f.blake2b.slice(0, 16), '']))
      ]
      io.stdout.write(rows.length ? table(['HOLDER', 'NAME', 'SIZE', 'BLAKE2B', 'PATH'], rows) : `nobody has ${w.query}\n`)
    }
    return w.local.length + w.remote.length > 0 ? 0 : 1
  }
})

type Outcome = { query: string, ok: true, result: FetchResult } | { query: string, ok: false, error: { code: string, message: string } }

export const fetchCommand = defineCommand({
  name: 'fetch',
  summary: 'fetch distfiles from peers into the cache dir, verified; exits 0 only when all are in place',
  usage: 'distswarm fetch NAME|DIGEST… [--control PATH] [--json]',
  examples: ['distswarm fetch linux-6.6.tar.xz', 'distswarm fetch --json gcc-14.2.0.tar.xz binutils-2.43.tar.xz'],
  options: CLIENT_OPTIONS,
  positionals: [1, Infinity],
  async run ({ values, positionals }, io) {
    const outcomes = await withClient(values, io, async (c) => Promise.all(positionals.map(async (query): Promise<Outcome> => {
      try {
        return { query, ok: true, result: await c.call('fetch', { query }) }
      } catch (err) {
        if (exitCodeOf(err) === 3) throw err
        const e = err as { code?: string, message?: string }
        return { query, ok: false, error: { code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(err) } }
      }
    })))
    if (values.json) writeJson(io, outcomes)
    else {
      for (const o of outcomes) {
        if (o.ok) {
          const r = o.result
          const how = r.source === 'local' ? 'already here' : `fetched in ${formatDuration(r.durationMs)} (${formatRate(r.size, r.durationMs)})`
          io.stdout.write(`${r.name}  ${formatBytes(r.size)}  ${how}  ${r.path}\n`)
        } else {
          io.stderr.write(`distswarm: fetch ${o.query}: ${o.error.message}\n`)
        }
      }
    }
    return outcomes.every((o) => o.ok) ? 0 : 1
  }
})
