import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { hashFile } from '../src/index.js'
import { USES_FILE } from '../src/gc.js'
import { INDEX_FILE } from '../src/hashindex.js'
import { useTempRoot } from './util.js'

const t = useTempRoot()
const CHILD = fileURLToPath(new URL('./state-child.mjs', import.meta.url))
const FULL_DISK_HOOK = fileURLToPath(new URL('../../../test/reliability/full-disk.mjs', import.meta.url))
const KILLS = 8

interface Run { lines: string[], code: number | null, signal: NodeJS.Signals | null }

/**
 * Runs state-child.mjs; with `kill`, SIGKILLs it `afterMs` after its first
 * `at` event past its first round, else lets it finish.
 */
async function runChild (dirs: { dist: string, cache: string, state: string }, rounds: number, env: NodeJS.ProcessEnv, kill?: { at: string, afterMs: number }): Promise<Run> {
  const child = spawn(process.execPath, [CHILD, dirs.dist, dirs.cache, dirs.state, String(rounds)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  let rest = ''
  let armed = false
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n')
    rest = parts.pop()!
    for (const line of parts) {
      lines.push(line)
      // From the second round on (the first has no state to tear), at the first event `at`.
      if (kill === undefined || armed || lines.every((l) => !l.startsWith('round 0 ')) || !line.includes(`"event":"${kill.at}"`)) continue
      armed = true
      setTimeout(() => child.kill('SIGKILL'), kill.afterMs)
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { lines, code, signal }
}

async function setup (): Promise<{ dist: string, cache: string, state: string }> {
  const dirs = { dist: join(t.root, 'dist'), cache: join(t.root, 'cache'), state: join(t.root, 'state') }
  await mkdir(dirs.dist, { recursive: true })
  await mkdir(dirs.cache, { recursive: true })
  return dirs
}

describe('state files across kill -9 (issue 17)', () => {
  it('a state dir left by a kill at any step of a save is read, or rebuilt from disk, with no entry naming wrong bytes', async () => {
    const dirs = await setup()
    for (let k = 0; k < KILLS; k++) {
      // Right before the index is saved (the last dir indexed) or the use times
      // (the store started; stop() follows), a little later each time; the
      // rename delay holds each save between its fsync and its rename for 300 ms.
      const kill = { at: k % 2 === 0 ? 'dir.indexed' : 'store.started', afterMs: 10 + 40 * k }
      const run = await runChild(dirs, 1000, { DISTSWARM_TEST_STATE_RENAME_DELAY_MS: '300' }, kill)
      expect(run.signal ?? run.code).toBe('SIGKILL')

      const store = t.makeStore({ distdirs: [dirs.dist], cacheDir: dirs.cache, stateDir: dirs.state, watch: false, rescanIntervalMs: 3_600_000 })
      await store.start()
      // A save is all or nothing: the index is the old one or the new one, never torn.
      expect(['loaded', 'missing']).toContain(store.stats.index)
      for (const f of store.entries()) expect((await hashFile(f.path)).blake2b.equals(f.blake2b)).toBe(true)
      const names = await readdir(dirs.state)
      expect(names.filter((n) => n.includes('.tmp-'))).toEqual([])
      if (names.includes(USES_FILE)) JSON.parse(await readFile(join(dirs.state, USES_FILE), 'utf8'))
      await store.stop()
    }
    expect(await readdir(dirs.state)).toContain(INDEX_FILE)
  }, 180_000)

  it('a full disk under the state dir is a warning, and the store goes on', async () => {
    const dirs = await setup()
    const run = await runChild(dirs, 2, { NODE_OPTIONS: `--import ${FULL_DISK_HOOK}`, DISTSWARM_TEST_FULL_DIR: dirs.state, DISTSWARM_TEST_FULL_BYTES: '100' })
    expect(run.code).toBe(0)
    const events = run.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string, event: string, error?: string })
    const warned = events.filter((e) => e.event === 'state.save-failed' && e.level === 'warn')
    expect(warned.length).toBeGreaterThan(0)
    expect(warned.every((e) => /ENOSPC/.test(e.error ?? ''))).toBe(true)
    expect(run.lines.filter((l) => l.startsWith('round '))).toHaveLength(2)
    expect((await readdir(dirs.state)).filter((n) => n.includes('.tmp-'))).toEqual([])
  }, 60_000)
})
