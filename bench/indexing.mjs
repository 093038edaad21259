#!/usr/bin/env node
// 2. The store's first index of a DISTDIR in a realistic mix of sizes, run
// for run against what a user without distswarm runs over the same files:
// b2sum, then sha512sum (and, for reference, both at once).
// Usage: node bench/indexing.mjs [--quick] [--json FILE]
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '@distswarm/store'
import { MiB, hashFiles, main, row, speedup, syncFs, timed, wallAndCpu, writeRandomFile } from './lib.mjs'

const RUNS = 3

/** A seeded PRNG (mulberry32): the same mix on every run of the suite. */
function prng (seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Sizes of a distdir of `total` bytes shaped like a Gentoo one: most files
 * small (patches, small tarballs: 1–64 KiB), a few hundred of 64 KiB–8 MiB,
 * and the bytes mostly in a few big tarballs of 10–200 MiB.
 */
function mix (total) {
  const rnd = prng(7)
  const logUniform = (lo, hi) => Math.round(lo * (hi / lo) ** rnd())
  const scale = total / (2048 * MiB)
  const sizes = [
    ...Array.from({ length: Math.round(10_000 * scale) }, () => logUniform(1024, 64 * 1024)),
    ...Array.from({ length: Math.round(400 * scale) }, () => logUniform(64 * 1024, 8 * MiB))
  ]
  let left = total - sizes.reduce((a, b) => a + b, 0)
  while (left > MiB) {
    const s = Math.min(left, logUniform(10 * MiB, 200 * MiB))
    sizes.push(s)
    left -= s
  }
  return sizes
}

export async function bench ({ quick, onCleanup }) {
  const total = (quick ? 512 : 2048) * MiB
  const root = await mkdtemp(join(tmpdir(), 'distswarm-bench-index-'))
  onCleanup(() => rm(root, { recursive: true, force: true }))
  try {
    const dist = join(root, 'distfiles')
    await mkdir(dist)
    const sizes = mix(total)
    const files = sizes.map((_, i) => join(dist, `pkg-${i}-1.0.tar.xz`))
    for (let i = 0; i < files.length; i += 64) {
      await Promise.all(files.slice(i, i + 64).map((f, j) => writeRandomFile(f, sizes[i + j])))
    }
    await syncFs(root)
    const bytes = sizes.reduce((a, b) => a + b, 0)
    const m = { ours: [], oursCpu: [], hashed: [], seq: [], b2: [], b2Cpu: [], sha: [], shaCpu: [], par: [], parCpu: [] }
    for (let i = 0; i < RUNS; i++) {
      const cpu0 = process.cpuUsage()
      const [wall, stats] = await timed(async () => {
        const store = new Store({ distdirs: [dist], cacheDir: join(root, `cache-${i}`), stateDir: join(root, `state-${i}`) })
        await store.start()
        const s = { ...store.stats, files: store.size }
        await store.stop()
        return s
      })
      const cpu = process.cpuUsage(cpu0)
      if (stats.files !== files.length) throw new Error(`the store indexed ${stats.files} of ${files.length} files`)
      m.ours.push(wall)
      m.oursCpu.push((cpu.user + cpu.system) / 1e6)
      m.hashed.push(stats.bytesHashed / MiB)

      const [b2, b2Cpu] = await hashFiles('b2sum', files)
      const [sha, shaCpu] = await hashFiles('sha512sum', files)
      Object.entries({ b2, b2Cpu, sha, shaCpu }).forEach(([k, v]) => m[k].push(v))
      m.seq.push(b2 + sha)

      const [par, cpus] = await timed(() => Promise.all([hashFiles('b2sum', files), hashFiles('sha512sum', files)]))
      m.par.push(par)
      m.parCpu.push(cpus[0][1] + cpus[1][1])
    }
    const n = files.length
    return {
      id: 'indexing',
      title: '2. Indexing',
      config: { files: n, bytes, runs: RUNS },
      rows: [
        row(`store first index, ${n} files / ${(bytes / MiB).toFixed(0)} MiB: wall`, 's', m.ours, { ratio: speedup(m.seq, m.ours, 'vs b2sum then sha512sum', 1.5) }),
        row('  store: CPU (every thread)', 's CPU', m.oursCpu),
        row('  store: bytes hashed', 'MiB', m.hashed),
        row('baseline: b2sum, then sha512sum, over the same files: wall', 's', m.seq),
        ...wallAndCpu('  b2sum', m.b2, m.b2Cpu),
        ...wallAndCpu('  sha512sum', m.sha, m.shaCpu),
        row('reference: b2sum and sha512sum at once (2 processes): wall', 's', m.par, { ratio: speedup(m.par, m.ours, 'vs both at once') }),
        row('  both at once: CPU', 's CPU', m.parCpu)
      ],
      notes: [
        `${n} files of random bytes: ${sizes.filter((s) => s <= 64 * 1024).length} of 1–64 KiB, ${sizes.filter((s) => s > 64 * 1024 && s <= 8 * MiB).length} of 64 KiB–8 MiB, ${sizes.filter((s) => s > 8 * MiB).length} of 10–200 MiB (${(sizes.filter((s) => s > 8 * MiB).reduce((a, b) => a + b, 0) / MiB).toFixed(0)} MiB).`,
        `${RUNS} runs, the store (Store.start() with a new, empty state dir each run: scan, hash with its default 2 worker threads, save the hash index) and the baselines alternating; coreutils get 1000 paths per invocation.`,
        'Page cache: warm for both sides (files written and synced just before; every side reads them from memory, nothing is dropped between runs).'
      ]
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main(import.meta.url, bench)
