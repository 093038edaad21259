#!/usr/bin/env node
// 2. The first index of a DISTDIR by a real agent process: from the spawn of
// `distswarm agent` until its control API lists every file, run for run
// against what a user without distswarm runs over the same files: b2sum,
// then sha512sum. Then a restart of the agent over the same state dir, which
// must read no file bytes again (counted by the kernel: /proc/PID/io rchar).
// Usage: node bench/indexing.mjs [--quick] [--json FILE]
import { readdirSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlClient } from '@distswarm/agent'
import { CLK_TCK, MiB, cpuOf, hashFiles, main, now, row, speedup, startNet, syncFs, wallAndCpu, writeRandomFile } from './lib.mjs'

const FILES = 200
const FILE_SIZE = 5 * MiB
/** How often the bench asks the agent's control API whether it lists every file yet. */
const POLL_MS = 10
const READY_MS = 120_000

/** Bytes a process has read through read(2) and friends so far, page cache hits included. */
function rcharOf (pid) {
  const m = /^rchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
  return m ? Number(m[1]) : NaN
}

/** CPU seconds of a process's main thread (its tid is its pid) and of its other live threads (hash workers, GC, libuv). */
function threadCpuOf (pid) {
  const ticks = (tid) => {
    const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  }
  let others = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) if (Number(tid) !== pid) others += ticks(tid)
  return { main: ticks(pid) / CLK_TCK, others: others / CLK_TCK }
}

/** The agent's status once it answers and lists `want` files, polled every POLL_MS. */
async function untilListing (proc, control, want) {
  const deadline = Date.now() + READY_MS
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`agent exited: ${proc.log.join('\n')}`)
    if (Date.now() > deadline) throw new Error(`the agent did not list ${want} files within ${READY_MS} ms`)
    const c = await ControlClient.connect(control).catch(() => null)
    if (c) {
      try {
        const s = await c.call('status', {}).catch(() => null)
        if (s && s.files >= want) return s
      } finally {
        c.close()
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/**
 * Spawns an agent over `distdir` with this state dir, and measures it from
 * the spawn until its control API lists `want` files: wall s, CPU s (every
 * thread) and bytes read by then. Stops it after.
 */
async function agentRun (net, { name, distdir, stateDir, cacheDir, want }) {
  const control = join(net.root, `${name}.sock`)
  const t = now()
  const proc = net.spawn(name, [
    'agent', '--config', '/dev/null', '--name', name, '--bootstrap', net.bootstrap, '--distdir', distdir,
    '--cache-dir', cacheDir, '--state-dir', stateDir, '--control', control, '--http', '127.0.0.1:0'
  ], { DISTSWARM_NETWORK_KEY: net.networkKey })
  try {
    await untilListing(proc, control, want)
    const wall = now() - t
    return { wall, cpu: cpuOf(proc.child.pid), rchar: rcharOf(proc.child.pid), threads: threadCpuOf(proc.child.pid) }
  } finally {
    await proc.stop()
  }
}

export async function bench ({ quick, onCleanup }) {
  const runs = quick ? 1 : 3
  const net = await startNet()
  onCleanup(() => net.close())
  try {
    const d = await net.dirs('indexer')
    const files = Array.from({ length: FILES }, (_, i) => join(d.distdir, `pkg-${i}-1.0.tar.xz`))
    for (let i = 0; i < files.length; i += 16) await Promise.all(files.slice(i, i + 16).map((f) => writeRandomFile(f, FILE_SIZE)))
    const empty = (await net.dirs('empty')).distdir
    await syncFs(net.root)
    const bytes = FILES * FILE_SIZE
    const m = { ours: [], oursCpu: [], oursRead: [], oursMain: [], oursOthers: [], again: [], againCpu: [], againRead: [], bare: [], bareCpu: [], bareRead: [], seq: [], b2: [], b2Cpu: [], sha: [], shaCpu: [] }
    const push = (prefix, r) => { m[prefix].push(r.wall); m[`${prefix}Cpu`].push(r.cpu); m[`${prefix}Read`].push(r.rchar / MiB) }
    // Interleaved, so drift in the machine's load hits both sides alike.
    for (let i = 0; i < runs; i++) {
      const dirs = { distdir: d.distdir, stateDir: join(d.dir, `state-${i}`), cacheDir: join(d.dir, `cache-${i}`) }
      const first = await agentRun(net, { name: `first-${i}`, ...dirs, want: FILES })
      push('ours', first)
      m.oursMain.push(first.threads.main)
      m.oursOthers.push(first.threads.others)
      push('again', await agentRun(net, { name: `again-${i}`, ...dirs, want: FILES }))
      push('bare', await agentRun(net, { name: `bare-${i}`, distdir: empty, stateDir: join(d.dir, `bare-state-${i}`), cacheDir: join(d.dir, `bare-cache-${i}`), want: 0 }))
      await Promise.all([rm(dirs.stateDir, { recursive: true, force: true }), rm(dirs.cacheDir, { recursive: true, force: true })])

      const [b2, b2Cpu] = await hashFiles('b2sum', files)
      const [sha, shaCpu] = await hashFiles('sha512sum', files)
      Object.entries({ b2, b2Cpu, sha, shaCpu }).forEach(([k, v]) => m[k].push(v))
      m.seq.push(b2 + sha)
    }
    // What a restart read beyond what an agent over an empty distdir reads (its code, config, state).
    const reread = m.againRead.map((r, i) => Math.max(0, r - m.bareRead[i]))
    return {
      id: 'indexing',
      title: '2. Indexing',
      config: { files: FILES, bytes, runs },
      rows: [
        row(`agent first index, ${FILES} files / ${(bytes / MiB).toFixed(0)} MiB, process start to listed: wall`, 's', m.ours, { ratio: speedup(m.seq, m.ours, 'vs b2sum then sha512sum', 1.5) }),
        // Load-proof where wall times are not: on a busy box wall time follows CPU time.
        row('  first index: agent CPU (every thread)', 's CPU', m.oursCpu, { ratio: speedup(m.b2Cpu.map((c, i) => c + m.shaCpu[i]), m.oursCpu, 'CPU of b2sum + sha512sum / agent CPU') }),
        row('    of it the main thread (start-up, index bookkeeping, control)', 's CPU', m.oursMain),
        row('    of it the other live threads (hash workers, GC, libuv)', 's CPU', m.oursOthers),
        row('  first index: bytes the agent read (rchar)', 'MiB', m.oursRead),
        row('baseline: b2sum, then sha512sum, over the same files: wall', 's', m.seq),
        ...wallAndCpu('  b2sum', m.b2, m.b2Cpu),
        ...wallAndCpu('  sha512sum', m.sha, m.shaCpu),
        row('agent restart over the same state dir, process start to listed: wall', 's', m.again),
        row('  restart: agent CPU', 's CPU', m.againCpu),
        row('  restart: bytes read beyond an agent over an empty distdir', 'MiB', reread, { target: { op: '<', value: 1, on: 'max', text: '< 1 MiB in every run (no file re-read)' } }),
        row('agent over an empty distdir, process start to answering: wall', 's', m.bare),
        row('  empty: agent CPU', 's CPU', m.bareCpu),
        row('  empty: bytes the agent read (rchar)', 'MiB', m.bareRead)
      ],
      notes: [
        `${FILES} files of ${FILE_SIZE / MiB} MiB of random bytes in one distdir; ${runs} runs, each: an agent process with a new state dir (first index), the same again over that state dir (restart), an agent over an empty distdir (start-up cost alone), then b2sum and sha512sum.`,
        `Agent times run from spawn() of \`distswarm agent\` (with a loopback DHT bootstrap node and its HTTP gateway on) until \`status\` on its control socket, polled every ${POLL_MS} ms, counts every file; CPU and bytes read are the agent process's own (/proc/PID/stat, /proc/PID/io rchar), taken at that moment.`,
        'coreutils get 1000 paths per invocation. Page cache: warm for every side (files written and synced just before, nothing dropped; dropping caches needs root).'
      ]
    }
  } finally {
    await net.close()
  }
}

await main(import.meta.url, bench)
