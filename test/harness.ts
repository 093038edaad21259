/**
 * Runs real `distswarm` processes for tests. Every process and temp dir is
 * registered for cleanup the moment it is created, so a failing test leaves
 * nothing running or behind.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { onTestFinished } from 'vitest'

const require = createRequire(import.meta.url)
const cliPkg = require.resolve('@distswarm/cli/package.json')
export const BIN = join(dirname(cliPkg), (require(cliPkg) as { bin: Record<string, string> }).bin.distswarm!)

export interface Result { code: number | null, stdout: string, stderr: string }

/** Runs one CLI command to completion (bounded by `timeoutMs`). */
export async function cli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** `cli` that must exit 0 and print JSON. */
export async function cliJson<T> (args: string[], env?: NodeJS.ProcessEnv): Promise<T> {
  const r = await cli([...args, '--json'], { env })
  if (r.code !== 0) throw new Error(`distswarm ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

export interface Daemon {
  child: ChildProcess
  /** stderr so far: the agent's event log */
  log: () => string
  stop: () => Promise<void>
}

/** Starts a long-running command; it is stopped when the test ends. */
export function daemon (args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { log += d })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  onTestFinished(stop)
  return { child, log: () => log, stop }
}

export async function tempDir (prefix = 'distswarm-e2e-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A DHT bootstrap node process on 127.0.0.1, any free port. */
export async function bootstrapNode (): Promise<string> {
  const d = daemon(['bootstrap', '--host', '127.0.0.1', '--port', '0', '--json'])
  const [line] = await once(createInterface({ input: d.child.stdout! }), 'line') as [string]
  const { host, port } = JSON.parse(line) as { host: string, port: number }
  return `${host}:${port}`
}

export interface AgentHandle extends Daemon {
  name: string
  dir: string
  distdir: string
  cacheDir: string
  control: string
}

/** An agent process with its own dirs under `root`. */
export async function startAgent (root: string, name: string, bootstrap: string, networkKey: string): Promise<AgentHandle> {
  const dir = join(root, name)
  const distdir = join(dir, 'distfiles')
  const cacheDir = join(dir, 'cache')
  const control = join(dir, 'control.sock')
  await mkdir(distdir, { recursive: true })
  const d = daemon([
    'agent', '--name', name, '--bootstrap', bootstrap, '--distdir', distdir, '--cache-dir', cacheDir,
    '--state-dir', join(dir, 'state'), '--control', control
  ], { DISTSWARM_NETWORK_KEY: networkKey })
  await waitFor(async () => (await cli(['status', '--control', control, '--json'])).code === 0, 30_000, `${name} to answer`)
  return { ...d, name, dir, distdir, cacheDir, control }
}

/** Polls `check` every 100 ms until it holds; fails after `ms`. */
export async function waitFor (check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Writes `size` random bytes to `path`, 1 MiB at a time. */
export async function randomFile (path: string, size: number): Promise<void> {
  const fh = await open(path, 'wx')
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024)
    for (let done = 0; done < size;) {
      const n = Math.min(buf.length, size - done)
      await fh.write(randomFillSync(buf, 0, n), 0, n)
      done += n
    }
  } finally {
    await fh.close()
  }
}

export const networkKey = (): string => randomBytes(32).toString('hex')
