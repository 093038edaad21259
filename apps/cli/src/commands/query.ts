import { readFile } from 'node:fs/promises'
import type { ControlClient, FetchParams, FetchResult, StatusResult, TransferInfo } from '@distswarm/agent'
import { DistswarmError } from '@distswarm/protocol'
import { CLIENT_ARGS, defineCommand, exitCodeOf, UsageError, writeJson, type Args, type CommandMeta, type IO, type Values } from '../command.js'
import { findControl, withClient } from '../control.js'
import {
  formatBytes, formatDuration, formatRtt, movedText, formatSince, isTTY, keyValues, paintFor, shortKey, table, type Paint
} from '../format.js'
import { hostPort, isWildcard, lanAddresses } from '../net.js'
import { LiveLines, progressLine, transferOf, type Tracked } from '../progress.js'

type QueryArgs<A extends Args> = A & typeof CLIENT_ARGS

interface QuerySpec<R, A extends Args> {
  meta: CommandMeta
  /** Flags besides --control, --config, --json and --help. */
  args?: A
  positionals?: [number, number]
  /** Throws UsageError for bad arguments, before the agent is contacted. */
  check?: (positionals: string[], values: Values<QueryArgs<A>>) => void
  /** Asks the agent. */
  ask: (client: ControlClient, positionals: string[], values: Values<QueryArgs<A>>, io: IO) => Promise<R>
  /** Prints the result for people (without --json). */
  show: (result: R, io: IO) => void
  /** Exit code for a result. Default 0. */
  exitCode?: (result: R) => number
  /** What --json prints of a result. Default: all of it. */
  json?: (result: R) => unknown
}

/** A command that asks the running agent one thing and prints the answer, as text or with --json. */
export function defineQuery<R, const A extends Args = {}> (spec: QuerySpec<R, A>) {
  const args: QueryArgs<A> = { ...spec.args as A, ...CLIENT_ARGS }
  return defineCommand({
    meta: spec.meta,
    args,
    positionals: spec.positionals,
    async run ({ values, positionals }, io) {
      spec.check?.(positionals, values)
      const control = await findControl(values, io.env)
      const result = await withClient(control.path, (client) => spec.ask(client, positionals, values, io))
      if (values.json) writeJson(io, spec.json ? spec.json(result) : result)
      else spec.show(result, io)
      return spec.exitCode?.(result) ?? 0
    }
  })
}

function cacheLine (cache: StatusResult['cache']): string {
  const max = cache.maxBytes
  return max !== null && max > 0
    ? `${formatBytes(cache.bytes)} of ${formatBytes(max)} (${Math.round(cache.bytes / max * 100)}%)`
    : `${formatBytes(cache.bytes)} (no limit)`
}

/**
 * Where other boxes reach a socket bound at `bound` ("host:port"): for a
 * wildcard bind, `port` on each of `addresses` (the agent's own list when its
 * status has one, else this box's, the box the control socket is on).
 */
export function reachableAt (bound: string, addresses: string[]): string {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(bound)
  if (!m || !isWildcard(m[1]!)) return bound
  const port = Number(m[2])
  return addresses.length ? `${addresses.map((a) => hostPort(a, port)).join(' ')} (all interfaces)` : `port ${port} on all interfaces`
}

/** The addresses a status lists, if the agent is one that lists them. */
function listedAddresses (s: StatusResult): string[] | null {
  if (!('addresses' in s) || !Array.isArray(s.addresses)) return null
  return s.addresses.filter((a): a is string => typeof a === 'string')
}

/** The misconfigurations an agent saw, as a table under a heading; '' when none (or an older agent, whose status has none). */
function problemsTable (problems: StatusResult['problems'] | undefined, p: Paint): string {
  if (!problems?.length) return ''
  return `\n${p.bold('problems')}\n` + table(['SEEN', 'ADDRESS', 'TIMES', 'CAUSE'], problems.map((x) => [
    formatSince(x.at), x.address, String(x.count), p.red(x.cause)
  ]), { right: [2], header: p.bold })
}

function percent (done: number, total: number): string {
  return total > 0 ? `${Math.floor(done / total * 100)}%` : '100%'
}

export const statusCommand = defineQuery({
  meta: {
    name: 'status',
    summary: "show this box's agent: identity, network, inventory, cache, builds, transfers in flight, traffic totals",
    usage: 'distswarm status [--control PATH | --config FILE] [--json]',
    examples: ['distswarm status', 'distswarm status --json | jq .traffic', 'distswarm status --json | jq ".transfers[] | {name, bytesDone, size}"']
  },
  ask: (c) => c.call('status', {}),
  show (s, io) {
    const p = paintFor(io.stdout, io.env)
    const f = s.fetches
    const t = s.traffic
    const addresses = listedAddresses(s) ?? lanAddresses()
    const rows: Array<[string, string]> = [
      ['agent', `${p.bold(s.name)} (${shortKey(s.publicKey)})${s.seed ? ', seed: serves, never fetches' : ''}`],
      ['network', s.network],
      ['dht', s.dhtAddress === null ? '-' : reachableAt(s.dhtAddress, addresses)],
      ['data port', s.dataPort === null ? 'off (transfers over hyperswarm)' : String(s.dataPort)],
      ['control', s.control],
      ['http', s.url ? `${s.url}/  (mirror: ${s.url}/distfiles/)` : 'off'],
      ['cache dir', s.cacheDir],
      ['distdirs', s.distdirs.join(' ') || '-'],
      ['inventory', `${s.files} files, ${formatBytes(s.bytes)}`],
      ['cache', cacheLine(s.cache)],
      ['manifests', s.manifest.repos.length ? `${s.manifest.names} distfiles in ${s.manifest.repos.join(' ')}${s.manifest.problems ? `, ${s.manifest.problems} lines skipped` : ''}` : 'none'],
      // An older agent's status has no builds.
      ...(s.builds ? [['builds', `${s.builds.local} on this box, ${s.builds.network} on the network, ${s.builds.served} in this box's binhost` +
        (s.url && s.builds.served ? ` (${s.url}/binpkgs/Packages)` : '')] as [string, string]] : []),
      ['peers', String(s.peers)],
      ['fetches', `${f.completed} done, ${f.failed ? p.red(`${f.failed} failed`) : '0 failed'}, ${f.inFlight} in flight`],
      ['traffic', `${formatBytes(t.servedToPeers)} served to peers, ${formatBytes(t.fetchedFromPeers)} fetched from peers, ` +
        `${formatBytes(t.fetchedUpstream)} upstream (${t.upstreamFiles} file${t.upstreamFiles === 1 ? '' : 's'} by portage-fetch)` +
        // An older agent's status has no relayed bytes.
        (t.relayedToPeers ? `; ${formatBytes(t.relayedToPeers)} of the served relayed from downloads under way` : '')],
      ['uptime', formatDuration(s.uptimeMs)]
    ]
    let out = keyValues(rows, p.dim) + problemsTable(s.problems, p)
    if (s.transfers.length) {
      // FROM: whole-file holders, then (with a +) boxes relaying pieces of their own download.
      const from = (x: TransferInfo): string => (x.sources ?? []).map((src) => src.holds === 'pieces' ? `+${src.name}` : src.name).join(',') || '-'
      out += `\n${p.bold('transfers in flight')}\n` + table(['NAME', 'DONE', 'SIZE', '%', 'STARTED', 'FROM'], s.transfers.map((x) => [
        x.name, formatBytes(x.bytesDone), formatBytes(x.size), percent(x.bytesDone, x.size), formatSince(x.startedAt), from(x)
      ]), { right: [1, 2, 3], header: p.bold })
    }
    io.stdout.write(out)
  }
})

/** Swarming: who this box relayed pieces of its downloads under way to, when it did. */
function relayedLine (peers: ReadonlyArray<{ name: string, publicKey: string, bytesRelayed?: number }>): string {
  const to = peers.filter((x) => (x.bytesRelayed ?? 0) > 0).map((x) => `${formatBytes(x.bytesRelayed!)} to ${x.name || shortKey(x.publicKey)}`)
  return to.length ? `relayed from downloads under way: ${to.join(', ')}\n` : ''
}

export const peersCommand = defineQuery({
  meta: {
    name: 'peers',
    summary: 'list the authenticated peers this agent is connected to (address, path, files, traffic, round-trip time), and the misconfigurations it saw',
    usage: 'distswarm peers [--control PATH | --config FILE] [--json]',
    examples: ['distswarm peers', 'distswarm peers --json | jq -r ".[] | [.name, .rttMs] | @tsv"', 'distswarm status --json | jq .problems   # the problems, as JSON']
  },
  // The problems come with the status; --json prints the peers alone, as ever.
  ask: async (c) => {
    const [peers, status] = await Promise.all([c.call('peers', {}), c.call('status', {})])
    return { peers, problems: status.problems }
  },
  json: (r) => r.peers,
  show ({ peers, problems }, io) {
    const p = paintFor(io.stdout, io.env)
    const now = Date.now()
    io.stdout.write((peers.length === 0
      ? 'no peers\n'
      : table(['NAME', 'KEY', 'ADDRESS', 'PATH', 'FILES', 'SENT', 'RECEIVED', 'RTT', 'FAULTS', 'CONNECTED', 'LAST SEEN'], peers.map((x) => [
        x.name || '?', shortKey(x.publicKey), x.address ?? '-', x.path, String(x.files), formatBytes(x.bytesSent), formatBytes(x.bytesReceived),
        formatRtt(x.rttMs), String(x.faults), formatSince(x.connectedAt, now), formatSince(x.lastSeenAt, now)
      ]), { right: [4, 5, 6, 7, 8], header: p.bold })) + relayedLine(peers) + problemsTable(problems, p))
  }
})

export const lsCommand = defineQuery({
  meta: {
    name: 'ls',
    summary: "list this box's distfiles (in a distdir or the cache dir), or the files a peer advertises",
    usage: 'distswarm ls [--peer KEY|NAME] [--control PATH | --config FILE] [--json]',
    examples: [
      'distswarm ls',
      'distswarm ls --peer 4b095f        # what the peer whose key starts with 4b095f advertises',
      'distswarm ls --peer build         # by name, or the start of it',
      'distswarm ls --json | jq -r \'.files[] | select(.where == "cache") | .name\''
    ]
  },
  args: { peer: { type: 'string', valueName: 'KEY|NAME', description: "a connected peer's name or key (a prefix of either will do): list its files instead" } },
  ask: (c, _, values) => c.call('ls', values.peer === undefined ? {} : { peer: values.peer }),
  show (r, io) {
    const p = paintFor(io.stdout, io.env)
    const bytes = r.files.reduce((n, f) => n + f.size, 0)
    const whose = r.peer ? `${r.peer.name || '?'} (${shortKey(r.peer.publicKey)})` : 'this box'
    io.stdout.write((r.files.length
      ? table(['NAME', 'SIZE', 'WHERE', 'BLAKE2B'], r.files.map((f) => [f.name, formatBytes(f.size), f.where, f.blake2b.slice(0, 16)]), { right: [1], header: p.bold })
      : '') + p.dim(`${r.files.length} file${r.files.length === 1 ? '' : 's'}, ${formatBytes(bytes)}, on ${whose}`) + '\n')
  }
})

export const whereCommand = defineQuery({
  meta: {
    name: 'where',
    summary: 'show which boxes hold a distfile, by name or BLAKE2B digest; exits 1 when none does',
    usage: 'distswarm where NAME|DIGEST [--control PATH | --config FILE] [--json]',
    examples: ['distswarm where firefox-128.0esr.source.tar.xz', 'distswarm where 1f3a…(128 hex characters)  # by BLAKE2B digest']
  },
  positionals: [1, 1],
  ask: (c, [query]) => c.call('where', { query: query! }),
  show (w, io) {
    const p = paintFor(io.stdout, io.env)
    const rows = [
      ...w.local.map((f) => ['this box', f.name, formatBytes(f.size), f.blake2b.slice(0, 16), f.path]),
      ...w.remote.flatMap((f) => f.holders.map((h) => [`${h.name || '?'} (${shortKey(h.publicKey)})`, f.name, formatBytes(f.size), f.blake2b.slice(0, 16), '-']))
    ]
    io.stdout.write(rows.length ? table(['HOLDER', 'NAME', 'SIZE', 'BLAKE2B', 'PATH'], rows, { right: [2], header: p.bold }) : `nobody has ${w.query}\n`)
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
      throw new UsageError(`${path}:${i + 1}: expected "name" or "name blake2b-hex", got ${JSON.stringify(line.slice(0, 200))}`)
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
/** How often the progress display asks the agent how its transfers stand. */
const POLL_MS = 250

/** The line an outcome prints: successes to stdout, failures to stderr. */
function outcomeLine (o: Outcome, p: Paint): string {
  if (!o.ok) return `distswarm: fetch ${o.query}: ${p.red(o.error.message)}\n`
  const r = o.result
  const how = r.source === 'local' ? 'already here' : p.green(`fetched ${movedText(r)}`)
  return `${r.name}  ${formatBytes(r.size)}  ${how}  ${r.path}\n`
}

export const fetchCommand = defineQuery({
  meta: {
    name: 'fetch',
    summary: 'fetch distfiles from peers into the cache dir, verified; exits 0 only when all are in place',
    usage: 'distswarm fetch NAME|DIGEST… | --from-file LIST [--control PATH | --config FILE] [--json]',
    examples: [
      'distswarm fetch linux-6.6.tar.xz      # a progress bar per file on a terminal',
      'distswarm fetch --json gcc-14.2.0.tar.xz binutils-2.43.tar.xz',
      "emerge -pf @world 2>&1 | grep -o '[^/ ]*$' | sort -u | distswarm fetch --from-file -   # prefetch before a big emerge"
    ]
  },
  args: { 'from-file': { type: 'string', valueName: 'LIST', description: 'fetch every file listed (one "name" or "name digest" a line; - for stdin)' } },
  positionals: [0, Infinity],
  check (queries, values) {
    if (queries.length === 0 && values['from-file'] === undefined) throw new UsageError('name a file or digest, or give --from-file LIST')
  },
  async ask (c, queries, values, io) {
    const items: FetchParams[] = queries.map((query) => ({ query }))
    if (values['from-file'] !== undefined) items.push(...await readList(values['from-file']))
    if (items.length === 0) throw new UsageError('the list names no file')
    const outcomes: Outcome[] = new Array<Outcome>(items.length)
    // Without --json each file's line is printed as it finishes; on a terminal, above progress bars polled from the agent's status.
    const live = !values.json && isTTY(io.stderr) ? new LiveLines(io.stderr) : null
    const paint = { stdout: paintFor(io.stdout, io.env), stderr: paintFor(io.stderr, io.env) }
    const tracked = new Map<number, Tracked>()
    let done = 0
    const redraw = (): void => {
      if (!live) return
      const now = Date.now()
      const lines = [...tracked.values()].map((t) => progressLine(t, now, live.columns))
      if (items.length > 1) {
        const inPlace = outcomes.filter((o) => o?.ok).length
        lines.push(paint.stderr.dim(`${done}/${items.length} done: ${inPlace} in place, ${done - inPlace} missed or failed`))
      }
      live.draw(lines)
    }
    const report = (o: Outcome): void => {
      if (values.json) return
      const text = outcomeLine(o, o.ok ? paint.stdout : paint.stderr)
      const to = o.ok ? io.stdout : io.stderr
      if (live) live.above(to, text)
      else to.write(text)
    }
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i]!
        const query = item.name ?? item.query
        tracked.set(i, { label: query })
        redraw()
        let outcome: Outcome
        try {
          outcome = { query, ok: true, result: await c.call('fetch', item) }
        } catch (err) {
          if (exitCodeOf(err) === 3) throw err
          const error = err instanceof DistswarmError ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: String(err) }
          outcome = { query, ok: false, error }
        } finally {
          tracked.delete(i)
        }
        outcomes[i] = outcome
        done++
        report(outcome)
        redraw()
      }
    }
    const poll = async (): Promise<void> => {
      const s = await c.call('status', {})
      const now = Date.now()
      for (const [i, t] of tracked) {
        const item = items[i]!
        t.transfer = transferOf(s.transfers, item.query, item.name)
        if (t.transfer && !t.first) t.first = { at: now, done: t.transfer.bytesDone }
      }
      redraw()
    }
    let polling = false
    const timer = live
      ? setInterval(() => {
        if (polling) return // one status request at a time
        polling = true
        poll().catch(() => {}).finally(() => { polling = false })
      }, POLL_MS)
      : null
    try {
      await Promise.all(Array.from({ length: Math.min(PREFETCH_CONCURRENCY, items.length) }, worker))
    } finally {
      if (timer) clearInterval(timer)
      live?.clear()
    }
    return outcomes
  },
  show (outcomes, io) {
    // each file's line went out as it finished; the sum up of a list
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
  meta: {
    name: 'verify',
    summary: "re-hash every file in the agent's cache dir against its index and Manifests; exits 1 when one is bad",
    usage: 'distswarm verify [--remove] [--control PATH | --config FILE] [--json]',
    examples: ['distswarm verify', 'distswarm verify --remove   # delete bad files from the cache dir and withdraw them from peers']
  },
  args: { remove: { type: 'boolean', description: 'delete each bad file from the cache dir (never from DISTDIR) and withdraw it from peers' } },
  ask: (c, _, values) => c.call('verify', values.remove === true ? { remove: true } : {}),
  show (r, io) {
    const p = paintFor(io.stdout, io.env)
    for (const b of r.bad) {
      io.stdout.write(`${p.red(b.removed ? 'REMOVED' : 'BAD')}  ${b.path}  ${b.reason}: ${b.detail}\n` +
        `  expected BLAKE2B ${b.expected ?? '-'}\n  actual   BLAKE2B ${b.actual ?? '-'}\n`)
    }
    const removed = r.bad.filter((b) => b.removed).length
    io.stdout.write(`${r.checked} files (${formatBytes(r.bytes)}) checked in ${r.cacheDir}: ${r.bad.length} bad${removed ? `, ${removed} removed` : ''}\n`)
  },
  exitCode: (r) => r.bad.length > 0 ? 1 : 0
})
