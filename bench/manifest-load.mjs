#!/usr/bin/env node --expose-gc
// Loads a generated ::gentoo-sized repo (PACKAGES Manifests, ENTRIES DIST
// lines) into the Manifest index, against the baseline of merely reading the
// same files. Run with --expose-gc for the memory figure.
// Usage: node --expose-gc bench/manifest-load.mjs [PACKAGES=20000] [ENTRIES=70000]
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManifestIndex } from '@distswarm/store'

const PACKAGES = Number(process.argv[2] ?? 20000)
const ENTRIES = Number(process.argv[3] ?? 70000)
const root = await mkdtemp(join(tmpdir(), 'distswarm-bench-manifest-'))
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
  const time = async (fn) => { const t = process.hrtime.bigint(); const r = await fn(); return [Number(process.hrtime.bigint() - t) / 1e6, r] }
  const readAll = async () => { for (let i = 0; i < files.length; i += 64) await Promise.all(files.slice(i, i + 64).map((f) => readFile(f))) }
  // Memory: one load into a quiet heap, the index still referenced when measured.
  const before = used()
  let index = await ManifestIndex.load([repo])
  const bytes = used() - before
  const names = index.size
  index = null
  const runs = []
  for (let i = 0; i < 3; i++) {
    const [readMs] = await time(readAll)
    const [loadMs] = await time(() => ManifestIndex.load([repo]))
    runs.push({ readMs, loadMs })
  }
  const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)
  console.log(`Manifest index: ${PACKAGES} Manifests, ${ENTRIES} DIST lines, ${names} names${globalThis.gc ? '' : ' (no --expose-gc: memory is approximate)'}\n`)
  console.log('| what | median of 3 | min | max |')
  console.log('|---|---|---|---|')
  console.log(`| read the Manifest files only (baseline) | ${med('readMs')[1].toFixed(0)} ms | ${med('readMs')[0].toFixed(0)} ms | ${med('readMs')[2].toFixed(0)} ms |`)
  console.log(`| ManifestIndex.load | ${med('loadMs')[1].toFixed(0)} ms | ${med('loadMs')[0].toFixed(0)} ms | ${med('loadMs')[2].toFixed(0)} ms |`)
  console.log(`\nmemory held by the index: ${(bytes / 2 ** 20).toFixed(1)} MiB (heap + array buffers, after GC)`)
} finally {
  await rm(root, { recursive: true, force: true })
}
