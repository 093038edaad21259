#!/usr/bin/env node
// Restart over N already-indexed distfiles, against the first index of the
// same files (the baseline: what every start would cost without the
// persistent hash index). Usage: node bench/store-restart.mjs [N=20000]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Store } from '@distswarm/store'

const N = Number(process.argv[2] ?? 20000)
const root = await mkdtemp(join(tmpdir(), 'distswarm-bench-restart-'))
try {
  const dist = join(root, 'distfiles')
  await mkdir(dist)
  let bytes = 0
  for (let i = 0; i < N; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, N - i) }, (_, j) => {
      const data = Buffer.alloc(1024 + ((i + j) * 37) % 8192, `pkg-${i + j}`)
      bytes += data.length
      return writeFile(join(dist, `pkg-${i + j}.tar.gz`), data)
    }))
  }
  const init = { distdirs: [dist], cacheDir: join(root, 'cache'), stateDir: join(root, 'state') }
  const open = async () => {
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    const t = process.hrtime.bigint()
    const store = new Store(init)
    await store.open()
    const ms = Number(process.hrtime.bigint() - t) / 1e6
    lag.disable()
    const r = { ms, files: store.size, filesHashed: store.stats.filesHashed, bytesHashed: store.stats.bytesHashed, maxLagMs: lag.max / 1e6 }
    await store.close()
    return r
  }
  const first = await open()
  const restarts = [await open(), await open(), await open()].sort((a, b) => a.ms - b.ms)
  const median = restarts[1]
  const row = (label, r) => `| ${label} | ${r.files} | ${r.ms.toFixed(0)} ms | ${r.filesHashed} | ${r.bytesHashed} | ${r.maxLagMs.toFixed(0)} ms |`
  console.log(`store restart: ${N} files, ${(bytes / 2 ** 20).toFixed(1)} MiB\n`)
  console.log('| run | files | time | files hashed | bytes hashed | max event-loop delay |')
  console.log('|---|---|---|---|---|---|')
  console.log(row('first index (baseline)', first))
  console.log(row(`restart (median of 3; min ${restarts[0].ms.toFixed(0)}, max ${restarts[2].ms.toFixed(0)} ms)`, median))
  console.log(`\nrestart is ${(first.ms / median.ms).toFixed(1)}x faster than indexing afresh`)
} finally {
  await rm(root, { recursive: true, force: true })
}
