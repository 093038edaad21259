#!/usr/bin/env node
// 2. (cont.) Restart over 20 000 already-indexed distfiles, against the
// first index of the same files (what every start would cost without the
// persistent hash index). Usage: node bench/store-restart.mjs [--quick] [--json FILE]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Store } from '@distswarm/store'
import { MiB, main, row, speedup, syncFs, timed } from './lib.mjs'

const N = 20_000
const RESTARTS = 5

export async function bench ({ onCleanup }) {
  const root = await mkdtemp(join(tmpdir(), 'distswarm-bench-restart-'))
  onCleanup(() => rm(root, { recursive: true, force: true }))
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
    await syncFs(root)
    const init = { distdirs: [dist], cacheDir: join(root, 'cache'), stateDir: join(root, 'state') }
    const open = async () => {
      const lag = monitorEventLoopDelay({ resolution: 10 })
      lag.enable()
      const [s, r] = await timed(async () => {
        const store = new Store(init)
        await store.start()
        return { store, files: store.size, ...store.stats }
      })
      lag.disable()
      await r.store.stop()
      if (r.files !== N) throw new Error(`the store holds ${r.files} of ${N} files`)
      return { s, filesHashed: r.filesHashed, bytesHashed: r.bytesHashed, lagMs: lag.max / 1e6 }
    }
    const first = await open()
    const restarts = []
    for (let i = 0; i < RESTARTS; i++) restarts.push(await open())
    const of = (k) => restarts.map((r) => r[k])
    return {
      id: 'restart',
      title: '2. Indexing: restart',
      config: { files: N, bytes, restarts: RESTARTS },
      rows: [
        row(`store restart over ${N} indexed files: wall`, 's', of('s'), {
          target: { op: '<', value: 1, text: '< 1 s' },
          ratio: speedup(of('s').map(() => first.s), of('s'), 'vs the first index')
        }),
        row('  restart: bytes of file content read (bytesHashed)', 'bytes', of('bytesHashed'), { target: { op: '=', value: 0, on: 'max', text: '0 in every run' } }),
        row('  restart: max event-loop delay', 'ms', of('lagMs')),
        row('first index of the same files (baseline, 1 run)', 's', [first.s]),
        row('  first index: bytes hashed', 'MiB', [first.bytesHashed / MiB])
      ],
      notes: [
        `${N} files of 1–9 KiB (${(bytes / MiB).toFixed(1)} MiB); one first index, then ${RESTARTS} restarts, each a new Store over the same state dir.`,
        'Page cache: warm (the restart reads only the index file and stat()s every file; the first index reads the files from memory).'
      ]
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main(import.meta.url, bench)
