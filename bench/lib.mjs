// Helpers shared by the benchmarks: statistics, process accounting from
// /proc, bounded waits and commands, a local network of agent processes,
// and the result rows every benchmark returns (see bench/run.mjs).
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { loadavg, tmpdir, userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalNet, waitFor } from '@distswarm/localnet'

export { waitFor, writeRandomFile } from '@distswarm/localnet'

export const MiB = 1024 * 1024

// ---- statistics ----

export function summary (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { median, min: s[0], max: s.at(-1), n: s.length }
}

/** The q-quantile (0..1) of xs, nearest rank. */
export function quantile (xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export const now = () => Number(process.hrtime.bigint()) / 1e9

/** Runs fn and resolves to [seconds, its result]. */
export async function timed (fn) {
  const t = now()
  const r = await fn()
  return [now() - t, r]
}

// ---- /proc accounting ----

export const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

function statFields (pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after "pid (comm)", comm may hold spaces; rest[0] is field 3 (state)
  return s.slice(s.lastIndexOf(')') + 2).split(' ')
}

/** CPU seconds (user + system, every thread) a process has used so far. */
export function cpuOf (pid) {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK
}

/** CPU seconds of this process's children that have exited and been waited for. */
export function childrenCpu () {
  const f = statFields(process.pid)
  return (Number(f[13]) + Number(f[14])) / CLK_TCK
}

/** A /proc/<pid>/status memory field (VmRSS, VmHWM) in MiB. */
export function memOf (pid, field) {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

// ---- bounded waits and commands ----

/** Rejects when p takes longer than ms. */
export function deadline (p, ms, what) {
  let timer
  return Promise.race([
    p,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

/** Runs a command to completion (stdout discarded), killing it after timeoutMs. Resolves to its [wall s, CPU s]. */
export async function run (cmd, args, timeoutMs = 600_000) {
  const cpu0 = childrenCpu()
  const t = now()
  await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`${cmd} exited ${code ?? signal}`))
    })
  })
  return [now() - t, childrenCpu() - cpu0]
}

/** Hashes files with one command over batches of paths (argv stays short); resolves to [wall s, CPU s]. */
export async function hashFiles (cmd, files, timeoutMs = 600_000) {
  let wall = 0
  let cpu = 0
  for (let i = 0; i < files.length; i += 1000) {
    const [w, c] = await run(cmd, ['--', ...files.slice(i, i + 1000)], timeoutMs)
    wall += w
    cpu += c
  }
  return [wall, cpu]
}

/** Writes back dirty pages, so writeback of generated data does not run during a measurement. */
export async function syncFs (dir) {
  await run('sync', ['-f', dir], 120_000)
}

// ---- nginx (Debian's, the baseline a Gentoo user would set up) ----

/** Pids of a process's children. */
export function childPids (pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

function nginxBinary () {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) {
    try {
      execFileSync(p, ['-v'], { stdio: 'ignore' })
      return p
    } catch {}
  }
  if (process.getuid?.() !== 0) throw new Error('nginx is not installed (apt-get install nginx) and this is not root')
  process.stderr.write('installing nginx (Debian package)\n')
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx'], { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  return '/usr/sbin/nginx'
}

async function freePort () {
  const s = createServer()
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise((resolve) => s.close(resolve))
  return port
}

/** nginx on 127.0.0.1 serving `root`, sendfile on, in the foreground; returns its URL and a stop(). */
export async function startNginx (root) {
  const bin = nginxBinary()
  const prefix = await mkdtemp(join(tmpdir(), 'distswarm-bench-nginx-'))
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, [
    ...(process.getuid?.() === 0 ? [`user ${userInfo().username};`] : []),
    'daemon off;', 'worker_processes 1;', `pid ${join(prefix, 'nginx.pid')};`, `error_log ${join(prefix, 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    '  sendfile on; tcp_nopush on; access_log off;',
    `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
    `  server { listen 127.0.0.1:${port}; root ${root}; }`,
    '}', ''
  ].join('\n'))
  const child = spawn(bin, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 2] })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}`)
    return fetch(`${url}/`).then(() => true, () => false)
  }, 10_000, 'nginx to answer')
  return {
    url,
    /** The nginx processes (master and worker): their CPU is the server's. */
    pids: () => [child.pid, ...childPids(child.pid)],
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((resolve) => child.once('exit', resolve))
      }
      await rm(prefix, { recursive: true, force: true })
    }
  }
}

// ---- agents ----

const require = createRequire(import.meta.url)
const cliPkg = require.resolve('@distswarm/cli/package.json')
export const bin = join(dirname(cliPkg), require(cliPkg).bin.distswarm)

/** A LocalNet with its bootstrap node running; close() it in a finally. */
export async function startNet () {
  const net = await LocalNet.create({ bin })
  try {
    await net.startBootstrap()
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

/** The time stamp of the first line of an agent's log with this event, in ms since the epoch. */
export function logged (agent, event) {
  const line = agent.log.find((l) => l.split(/\s+/)[3] === event)
  return line ? Date.parse(line.split(' ')[0]) : null
}

/** One control call on a fresh connection, bounded in time. */
export async function call (agent, method, params = {}, ms = 60_000) {
  const c = await agent.client()
  try {
    return await deadline(c.call(method, params), ms, `${agent.name} ${method}`)
  } finally {
    c.close()
  }
}

/** Waits until `agent` lists `name` locally (want true) or not (want false). */
export async function waitLocal (agent, name, want, ms = 30_000) {
  await waitFor(async () => (await call(agent, 'where', { query: name })).local.length > 0 === want, ms, `${agent.name} to ${want ? 'hold' : 'drop'} ${name}`, 50)
}

/** Waits until `agent` sees `name` at exactly the holders named in `holders`. */
export async function waitHolders (agent, name, holders, ms = 60_000) {
  const want = [...holders].sort().join(',')
  await waitFor(async () => {
    const { remote } = await call(agent, 'where', { query: name })
    return remote.flatMap((r) => r.holders.map((h) => h.name)).sort().join(',') === want
  }, ms, `${agent.name} to see ${name} at [${want}]`, 50)
}

/** Bytes sent and received by an agent over all its peers (the `distswarm peers --json` counters). */
export async function traffic (agent) {
  const peers = await call(agent, 'peers')
  return { sent: peers.reduce((n, p) => n + p.bytesSent, 0), received: peers.reduce((n, p) => n + p.bytesReceived, 0) }
}

// ---- results ----

/**
 * One line of the results table. `samples` are the runs' values; `target`
 * is { op: '<' | '<=' | '>=' | '=', value, text } judged on the median (or
 * on `target.on`: 'max'); `ratio` is the per-run ratios against a baseline
 * measured in the same run, with its own optional target.
 */
export function row (measure, unit, samples, opts = {}) {
  const r = { measure, unit, ...summary(samples), samples }
  if (opts.target) r.target = opts.target
  if (opts.ratio) r.ratio = { ...summary(opts.ratio.samples), samples: opts.ratio.samples, ...(opts.ratio.target ? { target: opts.ratio.target } : {}), of: opts.ratio.of }
  const judge = (stat, t) => t && ({ '<': stat < t.value, '<=': stat <= t.value, '>=': stat >= t.value, '=': stat === t.value })[t.op]
  const verdicts = [
    r.target && judge(r.target.on === 'max' ? r.max : r.median, r.target),
    r.ratio?.target && judge(r.ratio.median, r.ratio.target)
  ].filter((v) => v !== undefined)
  r.result = verdicts.length === 0 ? 'info' : verdicts.every(Boolean) ? 'pass' : 'MISS'
  return r
}

/** A command's two rows: wall and CPU seconds. */
export function wallAndCpu (label, walls, cpus) {
  return [row(`${label}: wall`, 's', walls), row(`${label}: CPU`, 's CPU', cpus)]
}

/** Per-run ratios baseline / ours (above 1: ours is faster), for row()'s `ratio`; with `min`, the target "≥ min×". */
export function speedup (baseline, ours, of, min) {
  const ratio = { samples: baseline.map((t, i) => t / ours[i]), of }
  if (min) ratio.target = { op: '>=', value: min, text: `≥ ${min}× the baseline's speed` }
  return ratio
}

const num = (v, unit) => {
  if (v === undefined || Number.isNaN(v)) return '–'
  const digits = unit === 'files' || unit === 'bytes' || unit === 'peers' ? 0 : Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2
  return `${v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }).replace(/,/g, ' ')} ${unit}`
}

/** The Markdown table of some benchmarks' results. */
export function table (benches) {
  const lines = [
    '| benchmark | measure | target | median | min | max | ratio to baseline (median, min–max) | result |',
    '|---|---|---|---|---|---|---|---|'
  ]
  for (const b of benches) {
    for (const r of b.rows) {
      const target = [r.target?.text, r.ratio?.target?.text].filter(Boolean).join('; ') || '–'
      const ratio = r.ratio ? `${r.ratio.median.toFixed(2)}× (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}) ${r.ratio.of}` : '–'
      lines.push(`| ${b.title} | ${r.measure} | ${target} | ${num(r.median, r.unit)} | ${num(r.min, r.unit)} | ${num(r.max, r.unit)} | ${ratio} | ${r.result} |`)
    }
  }
  return lines.join('\n')
}

/** Every benchmark's notes, under its title. */
export function notes (benches) {
  return benches.filter((b) => b.notes?.length).map((b) => `**${b.title}**: ${b.notes.join(' ')}`).join('\n\n')
}

const loadNow = () => Number(loadavg()[0].toFixed(2))

/**
 * The entry point of one benchmark module: `node bench/X.mjs [--quick]
 * [--json FILE]` runs `bench({ quick })`, which resolves to { title, rows,
 * notes, config }, prints its table and writes it as JSON. `cleanup` (from
 * the bench) also runs on SIGTERM/SIGINT, so a killed run leaves no agents
 * or temp dirs behind.
 */
export async function main (moduleUrl, bench) {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return
  const quick = process.argv.includes('--quick')
  const jsonAt = process.argv.indexOf('--json')
  const cleanups = []
  const stop = async (signal) => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {})
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGTERM', () => void stop('SIGTERM'))
  process.once('SIGINT', () => void stop('SIGINT'))
  const loadBefore = loadNow()
  const started = Date.now()
  const result = await bench({ quick, onCleanup: (fn) => cleanups.push(fn) })
  result.load = { before: loadBefore, after: loadNow() }
  result.seconds = (Date.now() - started) / 1000
  result.quick = quick
  console.log(`${table([result])}\n\n${notes([result])}\n`)
  if (jsonAt !== -1) {
    const file = process.argv[jsonAt + 1]
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  }
}

/** One agent's fetch of `name` over the control API, which must come from the swarm whole. */
export async function swarmFetch (agent, name, size) {
  const r = await call(agent, 'fetch', { query: name }, 900_000)
  if (r.source !== 'swarm' || r.size !== size) throw new Error(`${agent.name} fetch gave ${JSON.stringify(r)}`)
  return r
}

/** Takes `name` out of these agents' caches and waits until every one of `all` sees the seeder alone holding it. */
export async function forgetFile (some, all, name, ms = 60_000) {
  await Promise.all(some.map((a) => rm(join(a.cacheDir, name), { force: true })))
  await Promise.all(some.map((a) => waitLocal(a, name, false)))
  await Promise.all(all.map((a) => waitHolders(a, name, ['seeder'], ms)))
}

/** Seconds for these agents to fetch a file one after another, each forgetting it again after. */
export async function oneAfterAnother (agents, fetch, forget) {
  let seq = 0
  for (const a of agents) {
    seq += (await timed(() => fetch(a)))[0]
    await forget([a])
  }
  return seq
}
