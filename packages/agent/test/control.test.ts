/**
 * The control server's per-connection bounds, with handlers the test
 * controls. Real behaviour against a running agent: test/reliability/control-api.test.ts.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, lstat, mkdtemp, rm } from 'node:fs/promises'
import { createConnection, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ControlClient } from '../src/control.js'
import { startControlServer, type ControlServerInit, type Handlers } from '../src/control.js'
import { LineReader } from '../src/lines.js'
import type { StatusResult, WhereResult } from '../src/api.js'

interface Reply { id: number | null, result?: unknown, error?: { code: string } }

/** A control server on a temp socket with these handlers (the rest answer at once), closed when the test ends. */
async function server (handlers: Partial<Handlers>, init: ControlServerInit): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-control-'))
  const path = join(dir, 'control.sock')
  const quick: Handlers = {
    status: async () => ({ name: 'test' }) as StatusResult,
    peers: async () => [],
    where: async ({ query }) => ({ query, local: [], remote: [] }),
    fetch: async () => { throw new Error('not here') },
    verify: async () => ({ cacheDir: '', checked: 0, bytes: 0, bad: [] }),
    gc: async () => ({ cacheDir: '', dryRun: true, maxBytes: null, bytesBefore: 0, filesBefore: 0, bytesAfter: 0, filesAfter: 0, overBy: 0, files: [] }),
    ls: async () => ({ peer: null, files: [] }),
    upstream: async () => ({ fetchedUpstream: 0 }),
    binpkgs: async () => ({ chost: null, group: null, unavailable: 'none here', builds: [] })
  }
  const srv: Server = await startControlServer(path, { ...quick, ...handlers }, init)
  onTestFinished(async () => {
    await new Promise<void>((resolve) => srv.close(() => resolve()))
    await rm(dir, { recursive: true, force: true })
  })
  return path
}

async function connect (path: string): Promise<Socket> {
  const socket = createConnection(path)
  onTestFinished(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  return socket
}

/** Reads replies off `socket` as they come. */
function replies (socket: Socket): { got: Reply[], next: (n: number) => Promise<void> } {
  const got: Reply[] = []
  const reader = new LineReader(64 * 1024 * 1024)
  const waiters: Array<{ n: number, resolve: () => void }> = []
  socket.on('data', (chunk: Buffer) => {
    for (const line of reader.push(chunk)) got.push(JSON.parse(line) as Reply)
    for (const w of waiters.filter((x) => got.length >= x.n)) w.resolve()
  })
  return { got, next: (n) => new Promise((resolve) => { if (got.length >= n) resolve(); else waiters.push({ n, resolve }) }) }
}

/** One request on a connection of its own: once answered, the server has been through its event loop since. */
async function roundTrip (path: string): Promise<void> {
  const c = await ControlClient.connect(path)
  try {
    await c.call('peers', {})
  } finally {
    c.close()
  }
}

const request = (id: number, method = 'status', params: object = {}): string => JSON.stringify({ id, method, params }) + '\n'

describe('control server bounds', () => {
  it('answers at most maxInFlight requests of one connection at a time; the others wait their turn', async () => {
    const started: Array<() => void> = []
    let onStart = (): void => {}
    const path = await server({
      status: () => new Promise((resolve) => {
        started.push(() => resolve({ name: 'slow' } as StatusResult))
        onStart()
      })
    }, { maxInFlight: 3 })
    const socket = await connect(path)
    const r = replies(socket)
    const startedAtLeast = (n: number): Promise<void> => new Promise((resolve) => {
      onStart = () => { if (started.length >= n) resolve() }
      onStart()
    })

    socket.write(Array.from({ length: 10 }, (_, i) => request(i + 1)).join(''))
    await startedAtLeast(3)
    await roundTrip(path)
    expect(started).toHaveLength(3)

    started[0]!()
    await r.next(1)
    await startedAtLeast(4)
    await roundTrip(path)
    expect(started).toHaveLength(4)

    for (let i = 1; i < 10; i++) {
      await startedAtLeast(i + 1)
      started[i]!()
    }
    await r.next(10)
    expect(r.got.map((x) => x.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  })

  it('stops reading a client that does not read its replies', async () => {
    const big = 'x'.repeat(1024 * 1024)
    let calls = 0
    const path = await server({
      where: async ({ query }) => {
        calls++
        return { query: big, local: [], remote: [] } satisfies WhereResult
      }
    }, { maxInFlight: 4 })
    const socket = await connect(path)
    socket.pause()
    const n = 40
    socket.write(Array.from({ length: n }, (_, i) => request(i + 1, 'where', { query: 'q' })).join(''))
    await roundTrip(path)
    // Four ran at once, their 4 MiB of replies sit unread: nothing more is started.
    expect(calls).toBeLessThanOrEqual(4)

    const r = replies(socket)
    socket.resume()
    await r.next(n)
    expect(calls).toBe(n)
    expect(r.got.every((x) => (x.result as WhereResult).query === big)).toBe(true)
  })
})

/** The process umask is `mask` until the test ends. */
function umaskForTest (mask: number): void {
  const old = process.umask(mask)
  onTestFinished(() => { process.umask(old) })
}

/** nobody's uid and gid, or null where there is no such user. */
function nobody (): { uid: number, gid: number } | null {
  try {
    return { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) }
  } catch {
    return null
  }
}

/** What a status request from another process, run as uid/gid, gets: the reply, or the connect error's code. */
async function requestAs (ids: { uid: number, gid: number }, path: string): Promise<{ reply?: Reply, error?: string }> {
  const script = `
    const s = require('node:net').createConnection(process.argv[1])
    let got = ''
    s.on('connect', () => s.write(JSON.stringify({ id: 1, method: 'status', params: {} }) + '\\n'))
    s.on('data', (d) => { got += d; if (got.includes('\\n')) { process.stdout.write(JSON.stringify({ reply: JSON.parse(got) })); s.destroy() } })
    s.on('error', (e) => process.stdout.write(JSON.stringify({ error: e.code })))`
  // spawn drops supplementary groups: the child is in gid alone.
  const child = spawn(process.execPath, ['-e', script, path], { ...ids, cwd: '/', env: {}, stdio: ['ignore', 'pipe', 'inherit'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  await once(child, 'exit')
  clearTimeout(timer)
  return JSON.parse(out) as { reply?: Reply, error?: string }
}

describe('control socket access', () => {
  it('the socket is born mode 0660 even under umask 0, and the umask is left as it was', async () => {
    umaskForTest(0)
    const path = await server({}, {})
    const st = await lstat(path)
    expect(st.isSocket()).toBe(true)
    expect((st.mode & 0o7777).toString(8)).toBe('660')
    expect(process.umask(0)).toBe(0)
  })

  const ids = process.getuid?.() === 0 ? nobody() : null
  it.runIf(ids !== null)('refuses a connection from a user outside the socket\'s owner and group, answers its group (runs as root only: it acts as nobody)', async () => {
    umaskForTest(0) // so that only the socket's own mode keeps others out
    const path = await server({}, {})
    // The dir lets anyone through: what decides is the socket's mode.
    await chmod(dirname(path), 0o755)
    const { gid } = await lstat(path)
    expect(await requestAs(ids!, path)).toEqual({ error: 'EACCES' })
    const inGroup = await requestAs({ uid: ids!.uid, gid }, path)
    expect(inGroup.reply?.result).toEqual({ name: 'test' })
  })
})

describe('LineReader', () => {
  it('keeps a character split across chunks, takes a line of exactly maxBytes, refuses one byte more', () => {
    const reader = new LineReader(6)
    const text = Buffer.from('aé€\n') // 1 + 2 + 3 bytes
    expect(reader.push(text.subarray(0, 2))).toEqual([])
    expect(reader.push(text.subarray(2, 5))).toEqual([])
    expect(reader.push(text.subarray(5))).toEqual(['aé€'])
    expect(() => reader.push(Buffer.from('1234567'))).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }))
    expect(() => new LineReader(6).push(Buffer.from('1234567\n'))).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }))
  })
})
