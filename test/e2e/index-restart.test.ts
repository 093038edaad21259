import { expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { localNet, writeRandomFile } from '../harness.js'

const MiB = 1024 * 1024
const SIZE = 64 * MiB

/** Bytes a process has read by read(2) and the like, page cache hits included (the kernel's count, not ours). */
function bytesRead (pid: number): number {
  return Number(/^rchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1])
}

it('an agent restarted over its state dir lists its distfiles without reading their bytes again (issue 14)', async () => {
  const net = await localNet()
  const dirs = await net.dirs('box')
  await writeRandomFile(join(dirs.distdir, 'big-1.0.tar.xz'), SIZE)
  await writeRandomFile(join(dirs.distdir, 'small-1.0.tar.gz'), 4096)

  // startAgent resolves once the control socket answers, which is after the first index.
  const first = await net.startAgent({ name: 'box' })
  expect((await first.status()).files).toBe(2)
  expect(bytesRead(first.child.pid!)).toBeGreaterThan(SIZE)
  await first.stop()

  const again = await net.startAgent({ name: 'box' })
  expect((await again.status()).files).toBe(2)
  // What it reads is its code and state (a few MiB); the 64 MiB file again would be more.
  expect(bytesRead(again.child.pid!)).toBeLessThan(SIZE)
})
