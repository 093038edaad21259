#!/usr/bin/env node
// Runs every benchmark, one at a time, each in its own process (bounded in
// time), then prints one Markdown table to stdout and writes the same
// figures as JSON (default bench/results/latest.json). Progress goes to stderr.
// Usage: node bench/run.mjs [--quick] [--only transfer,lookup,…] [--out FILE]
import { spawn } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { notes, table } from './lib.mjs'

const BENCHES = [
  { id: 'transfer', file: 'transfer.mjs' },
  { id: 'indexing', file: 'indexing.mjs' },
  { id: 'restart', file: 'store-restart.mjs' },
  { id: 'lookup', file: 'lookup.mjs' },
  { id: 'fanout', file: 'fanout.mjs' },
  { id: 'discovery', file: 'discovery.mjs' },
  { id: 'manifest', file: 'manifest-load.mjs', node: ['--expose-gc'] },
  { id: 'gateway', file: 'gateway.mjs' },
  { id: 'lan', file: 'lan.mjs' },
  { id: 'binhost', file: 'binhost.mjs' },
  { id: 'swarming', file: 'swarming.mjs' },
  { id: 'flood', file: 'flood.mjs' }
]
const arg = (name) => { const i = process.argv.indexOf(name); return i === -1 ? undefined : process.argv[i + 1] }
const quick = process.argv.includes('--quick')
const only = arg('--only')?.split(',')
const here = dirname(fileURLToPath(import.meta.url))
const out = resolve(arg('--out') ?? join(here, 'results', 'latest.json'))
// A benchmark past this is stopped (SIGTERM: it cleans up; SIGKILL 20 s later).
const LIMIT_S = quick ? 120 : 1200

const load = () => Number(loadavg()[0].toFixed(2))
const selected = BENCHES.filter((b) => !only || only.includes(b.id))
const tmp = await mkdtemp(join(tmpdir(), 'distswarm-bench-results-'))
const started = new Date()
const loadStart = load()
const results = []
const failures = []
try {
  for (const b of selected) {
    process.stderr.write(`\n## ${b.id} (load ${load()})\n`)
    const json = join(tmp, `${b.id}.json`)
    const child = spawn(process.execPath, [...b.node ?? [], join(here, b.file), ...(quick ? ['--quick'] : []), '--json', json], { stdio: ['ignore', 2, 2] })
    let timedOut = false
    const term = setTimeout(() => { timedOut = true; child.kill('SIGTERM') }, LIMIT_S * 1000)
    const kill = setTimeout(() => child.kill('SIGKILL'), LIMIT_S * 1000 + 20_000)
    const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s)))
    clearTimeout(term)
    clearTimeout(kill)
    if (code === 0) results.push(JSON.parse(await readFile(json, 'utf8')))
    else failures.push({ id: b.id, error: timedOut ? `stopped after ${LIMIT_S} s` : `exited ${code}` })
  }
} finally {
  await rm(tmp, { recursive: true, force: true })
}

const cmd = `npm run bench${quick ? ' -- --quick' : ''}`
const head = `\`${cmd}\`, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}, ${cpus().length} cores, ` +
  `${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; 1-minute load average ${loadStart} at the start, ${load()} at the end ` +
  '(the machine is shared; the figure includes the benchmarks\' own processes); pass/MISS judged on the median unless the target says otherwise'
const loads = results.map((r) => `${r.title} ${r.load.before}→${r.load.after} (${r.seconds.toFixed(0)} s)`).join(', ')
console.log(`${head}\n\n${table(results)}\n\nLoad average before→after each benchmark: ${loads}.\n\n${notes(results)}`)
if (failures.length) console.log(`\nFAILED: ${failures.map((f) => `${f.id} (${f.error})`).join(', ')}`)

await mkdir(dirname(out), { recursive: true })
await writeFile(out, JSON.stringify({ command: cmd, quick, date: started.toISOString(), node: process.version, cores: cpus().length, loadStart, loadEnd: load(), benches: results, failures }, null, 2) + '\n')
// The last run of each kind stays too, next to latest.json.
if (!arg('--out')) await copyFile(out, join(dirname(out), quick ? 'quick.json' : 'full.json'))
console.log(`\nfigures as JSON: ${out}`)
process.exit(failures.length ? 1 : 0)
