#!/usr/bin/env node
// Loads a generated ::gentoo-sized repo (20 000 Manifests, 70 000 DIST
// lines) into the Manifest index, against the baseline of merely reading the
// same files. Run with --expose-gc for the memory figure (bench/run.mjs does).
// Usage: node --expose-gc bench/manifest-load.mjs [--quick] [--json FILE]
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManifestIndex } from '@distswarm/store'
import { MiB, main, row, speedup, timed } from './lib.mjs'

const RUNS = 3

export async function bench ({ quick, onCleanup }) {
  const PACKAGES = quick ? 5000 : 20_000
  const ENTRIES = quick ? 17_500 : 70_000
  const root = await mkdtemp(join(tmpdir(), 'distswarm-bench-manifest-'))
  onCleanup(() => rm(root, { recursive: true, force: true }))
  const gc = globalThis.gc ?? (() => {})
  const used = () => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
  try {
    const repo = join(root, 'gentoo')
    const files = []
    for (let p = 0; p < PACKAGES; p++) {
      const dir = join(repo, `cat-${p % 170}`, `pkg-${p}`)
      const lines = []
      for (let e = p; e < ENTRIES; e += PACKAGES) {
        lines.push(`DIST pkg-${p}-file-${e}.tar.xz ${1000 + e} BLAKE2B ${randomBytes(64).toString('hex')} SHA512 ${randomBytes(64).toString('hex')}`)
      }
      lines.push(`EBUILD pkg-${p}-1.ebuild 1234 BLAKE2B ${'0'.repeat(128)} SHA512 ${'0'.repeat(128)}`)
      await mkdir(dir, { recursive: true })
      files.push(join(dir, 'Manifest'))
      await writeFile(files.at(-1), lines.join('\n') + '\n')
    }
    const readAll = async () => { for (let i = 0; i < files.length; i += 64) await Promise.all(files.slice(i, i + 64).map((f) => readFile(f))) }
    // Memory: one load into a quiet heap, the index still referenced when measured.
    const before = used()
    let index = await ManifestIndex.load([repo])
    const bytes = used() - before
    const names = index.size
    index = null
    const m = { read: [], load: [] }
    for (let i = 0; i < RUNS; i++) {
      m.read.push((await timed(readAll))[0])
      m.load.push((await timed(() => ManifestIndex.load([repo])))[0])
    }
    return {
      id: 'manifest',
      title: 'Manifest index',
      config: { manifests: PACKAGES, distLines: ENTRIES, names, runs: RUNS },
      rows: [
        row(`ManifestIndex.load, ${PACKAGES} Manifests / ${ENTRIES} DIST lines`, 's', m.load, { ratio: speedup(m.read, m.load, 'vs reading the files only') }),
        row('baseline: read the Manifest files only', 's', m.read),
        row(`memory held by the index (heap + array buffers after GC${globalThis.gc ? '' : '; no --expose-gc, approximate'}, 1 sample)`, 'MiB', [bytes / MiB])
      ],
      notes: [`A generated repo; ${RUNS} runs, reading and loading alternating; page cache warm for both.`]
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main(import.meta.url, bench)
