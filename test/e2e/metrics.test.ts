/**
 * `--metrics`: real agents serve Prometheus text at /metrics; scraped over
 * HTTP and read with a strict parser, the counters move by exactly what the
 * test did.
 */
import { describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, StatusResult, WhereResult } from '@distswarm/agent'
import { alterInPlace, cli, cliJson, localNet, waitFor, type AgentProc } from '../harness.js'
import { distfile } from '../gentoo.js'

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`)
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(?:,|$)/
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/

interface Scrape {
  /** TYPE of each family */
  types: Map<string, string>
  /** the value of one series; throws when it is absent */
  value: (name: string, labels?: Record<string, string>) => number
  series: Map<string, number>
}

const seriesKey = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',')}}`

/**
 * Reads exposition text (format 0.0.4) strictly: every line a comment or
 * `name{labels} value`; each family's HELP and TYPE once, before its
 * samples; every sample in a declared family; no series twice.
 */
function parseExposition (text: string): Scrape {
  if (!text.endsWith('\n')) throw new Error('exposition text must end with a newline')
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const series = new Map<string, number>()
  const familyOf = (name: string): string | undefined => {
    if (types.has(name)) return name
    const base = name.replace(/_(bucket|sum|count)$/, '')
    return ['histogram', 'summary'].includes(types.get(base) ?? '') ? base : undefined
  }
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${i + 1} ${JSON.stringify(line)}`
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string]
      if (!new RegExp(`^${NAME}$`).test(name)) throw new Error(`${where}: bad metric name`)
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`${where}: second HELP`)
        helps.add(name)
      } else {
        if (types.has(name) || !TYPES.has(rest)) throw new Error(`${where}: second TYPE, or unknown type`)
        if ([...series.keys()].some((k) => k.startsWith(`${name}{`) || k.startsWith(`${name}_`))) throw new Error(`${where}: TYPE after samples`)
        types.set(name, rest)
      }
      continue
    }
    if (line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`${where}: neither a comment nor a sample`)
    const [, name, labelText = '', value] = m as unknown as [string, string, string | undefined, string]
    const labels: Record<string, string> = {}
    for (let rest = labelText; rest !== '';) {
      const l = LABEL.exec(rest)
      if (!l) throw new Error(`${where}: bad labels`)
      if (l[1]! in labels) throw new Error(`${where}: label ${l[1]} twice`)
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
      rest = rest.slice(l[0].length)
    }
    if (!FLOAT.test(value)) throw new Error(`${where}: bad value`)
    const family = familyOf(name)
    if (family === undefined || !helps.has(family)) throw new Error(`${where}: sample of a family without HELP and TYPE`)
    const key = seriesKey(name, labels)
    if (series.has(key)) throw new Error(`${where}: series twice`)
    series.set(key, Number(value.replace('Inf', 'Infinity')))
  }
  return {
    types,
    series,
    value: (name, labels = {}) => {
      const v = series.get(seriesKey(name, labels))
      if (v === undefined) throw new Error(`no series ${seriesKey(name, labels)}`)
      return v
    }
  }
}

async function metricsAddress (agent: AgentProc): Promise<string> {
  const status = await cliJson<StatusResult>(['status', '--control', agent.control])
  expect(status.metricsAddress).toMatch(/^127\.0\.0\.1:[1-9]\d*$/)
  return status.metricsAddress!
}

async function scrape (address: string): Promise<Scrape> {
  const r = await fetch(`http://${address}/metrics`)
  expect(r.status).toBe(200)
  expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
  return parseExposition(await r.text())
}

/** How much each series moved from `before` to `after` (series absent before count from 0). */
function delta (before: Scrape, after: Scrape): (name: string, labels?: Record<string, string>) => number {
  return (name, labels = {}) => after.value(name, labels) - (before.series.get(seriesKey(name, labels)) ?? 0)
}

const FETCH_RESULTS = ['local', 'swarm', 'not_found', 'failed']
const METRICS = ['--metrics', '127.0.0.1:0']

describe('metrics', () => {
  it('counts fetches by result, bytes each way, inventory, peers by path and transfer durations', async () => {
    const net = await localNet()
    const f = distfile('metered-1.0.tar.xz', Buffer.alloc(6 * 1024 * 1024 + 5, 0x6d))
    await writeFile(join((await net.dirs('seeder')).distdir, f.name), f.data)
    const [seeder, box] = await Promise.all([
      net.startAgent({ name: 'seeder', args: METRICS }),
      net.startAgent({ name: 'box', args: METRICS }),
      net.startAgent({ name: 'legacy', args: ['--data-port', 'off'] })
    ])
    const paths = async (): Promise<string> =>
      (await cliJson<PeerInfo[]>(['peers', '--control', box.control])).map((p) => `${p.name}:${p.path}`).sort().join(' ')
    await waitFor(async () => await paths() === 'legacy:hyperswarm seeder:tcp', 30_000, 'box to meet both, with a TCP link to the seeder only')
    await waitFor(async () => (await cli(['where', f.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')
    const [boxAt, seederAt] = [await metricsAddress(box), await metricsAddress(seeder)]
    const [boxBefore, seederBefore] = [await scrape(boxAt), await scrape(seederAt)]

    // Besides prom-client's standard process_* and nodejs_* families, every series carries the prefix; each family its type.
    expect([...boxBefore.series.keys()].every((k) => /^(distswarm|process|nodejs)_/.test(k))).toBe(true)
    expect(boxBefore.types.get('process_cpu_seconds_total')).toBe('counter')
    expect(boxBefore.types.get('process_resident_memory_bytes')).toBe('gauge')
    expect(boxBefore.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge')
    expect(Object.fromEntries([...boxBefore.types].filter(([name]) => name.startsWith('distswarm_')))).toEqual({
      distswarm_peers_connected: 'gauge',
      distswarm_inventory_files: 'gauge',
      distswarm_inventory_bytes: 'gauge',
      distswarm_bytes_total: 'counter',
      distswarm_fetches_total: 'counter',
      distswarm_verification_failures_total: 'counter',
      distswarm_peer_faults_total: 'counter',
      distswarm_peer_bans_total: 'counter',
      distswarm_relayed_bytes_total: 'counter',
      distswarm_transfer_duration_seconds: 'histogram'
    })
    expect(boxBefore.value('distswarm_peers_connected', { path: 'tcp' })).toBe(1)
    expect(boxBefore.value('distswarm_peers_connected', { path: 'hyperswarm' })).toBe(1)
    for (const result of FETCH_RESULTS) expect(boxBefore.value('distswarm_fetches_total', { result })).toBe(0)

    // One file from the swarm, then the same again (now local), then one nobody has.
    const [fetched] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', box.control])
    expect(fetched!.result.source).toBe('swarm')
    const [again] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', box.control])
    expect(again!.result.source).toBe('local')
    expect((await cli(['fetch', 'nobody-has-1.0.tar.xz', '--control', box.control])).code).toBe(1)

    const [boxAfter, seederAfter] = [await scrape(boxAt), await scrape(seederAt)]
    const moved = delta(boxBefore, boxAfter)
    expect(Object.fromEntries(FETCH_RESULTS.map((result) => [result, moved('distswarm_fetches_total', { result })])))
      .toEqual({ local: 1, swarm: 1, not_found: 1, failed: 0 })
    expect(moved('distswarm_inventory_files')).toBe(1)
    expect(moved('distswarm_inventory_bytes')).toBe(f.data.length)
    // The file's bytes, plus the frames' headers and a few small messages.
    const slack = 64 * 1024
    const received = moved('distswarm_bytes_total', { direction: 'received' })
    expect(received).toBeGreaterThanOrEqual(f.data.length)
    expect(received).toBeLessThan(f.data.length + slack)
    expect(moved('distswarm_bytes_total', { direction: 'sent' })).toBeLessThan(slack)
    const served = delta(seederBefore, seederAfter)('distswarm_bytes_total', { direction: 'sent' })
    expect(served).toBeGreaterThanOrEqual(f.data.length)
    expect(served).toBeLessThan(f.data.length + slack)
    for (const name of ['distswarm_verification_failures_total', 'distswarm_peer_faults_total', 'distswarm_peer_bans_total']) expect(moved(name)).toBe(0)

    // One transfer observed: +Inf holds it, the buckets never go down, the sum is its duration.
    const h = 'distswarm_transfer_duration_seconds'
    expect(moved(`${h}_count`)).toBe(1)
    expect(moved(`${h}_bucket`, { le: '+Inf' })).toBe(1)
    const buckets = [...boxAfter.series].filter(([k]) => k.startsWith(`${h}_bucket{`)).map(([, v]) => v)
    expect(buckets.length).toBeGreaterThan(5)
    expect(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]!)).toBe(true)
    expect(moved(`${h}_sum`)).toBeCloseTo(fetched!.result.durationMs / 1000, 3)
  })

  it('counts a failed whole-file check and the fault of the peer blamed for it', async () => {
    const net = await localNet()
    const f = distfile('blamed-1.0.tar.xz', Buffer.alloc(8 * 1024 * 1024 + 3, 0x5a))
    for (const name of ['liar', 'honest']) await writeFile(join((await net.dirs(name)).distdir, f.name), f.data)
    const holders = async (): Promise<number> => {
      const r = await cli(['where', f.name, '--control', box.control, '--json'])
      return r.code === 0 ? (JSON.parse(r.stdout) as WhereResult).remote[0]?.holders.length ?? 0 : 0
    }
    // The liar is met first, so it is the first source tried (as in lying-peer.test.ts).
    const [liar, box] = await Promise.all([net.startAgent({ name: 'liar' }), net.startAgent({ name: 'box', args: METRICS })])
    await waitFor(async () => await holders() === 1, 30_000, 'the liar\'s inventory at box')
    await net.startAgent({ name: 'honest' })
    await waitFor(async () => await holders() === 2, 30_000, 'both holders at box')
    await alterInPlace(join(liar.distdir, f.name), (d) => { for (let o = 0; o < d.length; o += 4 * 1024 * 1024) d[o] = 0 })

    const at = await metricsAddress(box)
    const before = await scrape(at)
    const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', box.control])
    expect(r!.result.source).toBe('swarm')
    const moved = delta(before, await scrape(at))
    expect({
      verificationFailures: moved('distswarm_verification_failures_total'),
      faults: moved('distswarm_peer_faults_total'),
      bans: moved('distswarm_peer_bans_total'),
      swarm: moved('distswarm_fetches_total', { result: 'swarm' }),
      transfers: moved('distswarm_transfer_duration_seconds_count')
    }).toEqual({ verificationFailures: 1, faults: 1, bans: 0, swarm: 1, transfers: 1 })
  })
})
