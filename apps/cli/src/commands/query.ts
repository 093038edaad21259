import { readFile } from 'node:fs/promises'
import { ControlClient, defaultControlPath, type FetchParams, type FetchResult } from '@distswarm/agent'
import { CLIENT_OPTIONS, defineCommand, exitCodeOf, UsageError, writeJson, type Command, type IO } from '../command.js'
import { formatBytes, formatDuration, formatRate, shortKey, table } from '../format.js'

interface QuerySpec<R> {
  name: string
  summary: string
  usage: string
  examples: string[]
  positionals?: [number, number]
  /** Throws UsageError for bad arguments, before the agent is contacted. */
  check?: (positionals: string[], values: Record<string, unknown>) => void
  /** Options besides --control, --json and --help. */
  options?: Command['options']
  /** Asks the agent. */
  ask: (client: ControlClient, positionals: string[], values: Record<string, unknown>, io: IO) => Promise<R>
  /** Prints the result for people (without --json). */
  show: (result: R, io: IO) => void
  /** Exit code for a result. Default 0. */
  exitCode?: (result: R) => number
}

/** A command that asks the running agent one thing and prints the answer, as text or with --json. */
export function defineQuery<R> (spec: QuerySpec<R>): Command {
  return defineCommand({
    name: spec.name,
    summary: spec.summary,
    usage: spec.usage,
    examples: spec.examples,
    positionals: spec.positionals,
    options: { ...spec.options, ...CLIENT_OPTIONS },
    async run ({ values, positionals }, io) {
      spec.check?.(positionals, values)
      const client = await ControlClient.connect((values.control as string | undefined) ?? defaultControlPath(io.env))
      let result: R
      try {
        result = await spec.ask(client, positionals, values, io)
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
      ['agent', `${s.name} (${shortKey(s.publicKey)})${s.seed ? ', seed: serves, never fetches' : ''}`],
      ['network', s.network],
      ['dht', s.dhtAddress ?? '-'],
      ['data port', s.dataPort === null ? 'off (transfers over hyperswarm)' : String(s.dataPort)],
      ['control', s.control],
      ['cache dir', s.cacheDir],
      ['distdirs', s.distdirs.join(' ') || '-'],
      ['files', `${s.files} (${formatBytes(s.bytes)})`],
      ['manifests', s.manifest.repos.length ? `${s.manifest.names} distfiles in ${s.manifest.repos.join(' ')}${s.manifest.problems ? `, ${s.manifest.problems} lines skipped` : ''}` : 'none'],
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
      : table(['NAME', 'KEY', 'ADDRESS', 'PATH', 'FILES', 'SENT', 'RECEIVED', 'FAULTS', 'CONNECTED'], peers.map((p) => [
        p.name || '?', shortKey(p.publicKey), p.address ?? '-', p.path, String(p.files), formatBytes(p.bytesSent), formatBytes(p.bytesReceived), String(p.faults), p.connectedAt
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

/** Reads a prefetch list: one `name` or `name digest` a line; blank lines and # comments skipped. */
async function readList (path: string): Promise<FetchParams[]> {
  const text = path === '-' ? await readStdin() : await readFile(path, 'utf8')
  const items: FetchParams[] = []
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) continue
    const [name, digest, extra] = line.split(/\s+/)
    if (extra !== undefined || (digest !== undefined && !/^[0-9a-fA-F]{128}$/.test(digest))) {
      throw new UsageError(`fetch: ${path}:${i + 1}: expected "name" or "name blake2b-hex", got ${JSON.stringify(line.slice(0, 200))}`)
    }
    items.push(digest ? { query: digest.toLowerCase(), name: name! } : { query: name! })
  }
  return items
}

async function readStdin (): Promise<string> {
  let text = ''
  for await (const chunk of process.stdin) text += String(chunk)
  return text
}

const PREFETCH_CONCURRENCY = 4

export const fetchCommand = defineQuery({
  name: 'fetch',
  summary: 'fetch distfiles from peers into the cache dir, verified; exits 0 only when all are in place',
  usage: 'distswarm fetch NAME|DIGEST… | --from-file LIST [--control PATH] [--json]',
  examples: [
    'distswarm fetch linux-6.6.tar.xz',
    'distswarm fetch --json gcc-14.2.0.tar.xz binutils-2.43.tar.xz',
    "emerge -pf @world 2>&1 | grep -o '[^/ ]*$' | sort -u | distswarm fetch --from-file -   # prefetch before a big emerge"
  ],
  options: { 'from-file': { type: 'string', description: 'fetch every file listed (one "name" or "name digest" a line; - for stdin)' } },
  positionals: [0, Infinity],
  check (queries, values) {
    if (queries.length === 0 && values['from-file'] === undefined) throw new UsageError('fetch: name a file or digest, or give --from-file LIST')
  },
  async ask (c, queries, values, io) {
    const items: FetchParams[] = queries.map((query) => ({ query }))
    if (values['from-file'] !== undefined) items.push(...await readList(values['from-file'] as string))
    if (items.length === 0) throw new UsageError('fetch: the list names no file')
    const outcomes: Outcome[] = new Array<Outcome>(items.length)
    const progress = items.length > 1 && (io.stderr as { isTTY?: boolean }).isTTY === true && !values.json
    let done = 0
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i]!
        try {
          outcomes[i] = { query: item.name ?? item.query, ok: true, result: await c.call('fetch', item) }
        } catch (err) {
          if (exitCodeOf(err) === 3) throw err
          const e = err as { code?: string, message?: string }
          outcomes[i] = { query: item.name ?? item.query, ok: false, error: { code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(err) } }
        }
        done++
        if (progress) io.stderr.write(`\rfetching ${done}/${items.length}  ${outcomes.filter((o) => o?.ok).length} in place  ${outcomes.filter((o) => o && !o.ok).length} missed`)
      }
    }
    await Promise.all(Array.from({ length: Math.min(PREFETCH_CONCURRENCY, items.length) }, worker))
    if (progress) io.stderr.write('\n')
    return outcomes
  },
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
    if (outcomes.length > 1) {
      const fetched = outcomes.filter((o) => o.ok && o.result.source === 'swarm')
      const here = outcomes.filter((o) => o.ok && o.result.source === 'local').length
      const missed = outcomes.filter((o) => !o.ok && o.error.code === 'ERR_NOT_FOUND').length
      const failed = outcomes.length - fetched.length - here - missed
      const bytes = fetched.reduce((n, o) => n + (o.ok ? o.result.size : 0), 0)
      io.stdout.write(`${fetched.length} fetched (${formatBytes(bytes)}), ${here} already here, ${missed} on no peer, ${failed} failed\n`)
    }
  },
  exitCode: (outcomes) => outcomes.every((o) => o.ok) ? 0 : 1
})

export const verifyCommand = defineQuery({
  name: 'verify',
  summary: "re-hash every file in the agent's cache dir against its index and Manifests; exits 1 when one is bad",
  usage: 'distswarm verify [--remove] [--control PATH] [--json]',
  examples: ['distswarm verify', 'distswarm verify --remove   # delete bad files from the cache dir and withdraw them from peers'],
  options: { remove: { type: 'boolean', description: 'delete each bad file from the cache dir (never from DISTDIR) and withdraw it from peers' } },
  ask: (c, _, values) => c.call('verify', values.remove === true ? { remove: true } : {}),
  show (r, io) {
    for (const b of r.bad) {
      io.stdout.write(`${b.removed ? 'REMOVED' : 'BAD'}  ${b.path}  ${b.reason}: ${b.detail}\n` +
        `  expected BLAKE2B ${b.expected ?? '-'}\n  actual   BLAKE2B ${b.actual ?? '-'}\n`)
    }
    const removed = r.bad.filter((b) => b.removed).length
    io.stdout.write(`${r.checked} files (${formatBytes(r.bytes)}) checked in ${r.cacheDir}: ${r.bad.length} bad${removed ? `, ${removed} removed` : ''}\n`)
  },
  exitCode: (r) => r.bad.length > 0 ? 1 : 0
})
