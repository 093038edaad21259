/**
 * A stand-in for an agent's control socket: answers each request line with
 * what `answer` returns (a reply object, sent with the request's id, or a
 * raw line). For what the CLI does with replies a real agent never sends,
 * and for commands whose output depends on one field of them.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { onTestFinished } from 'vitest'
import type { IO } from '../src/command.js'

export interface Request { id: number, method: string, params: Record<string, unknown> }
export type Answer = { result: unknown } | { error: { code: string, message: string } } | { raw: string }

export async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-cli-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Listens on a socket in a new temp dir; closed (and the dir removed) when the test ends. Resolves to its path, the requests seen and the connections taken so far. */
export async function fakeAgent (answer: (req: Request) => Answer): Promise<{ path: string, requests: Request[], readonly connections: number }> {
  const path = join(await tempDir(), 'control.sock')
  const requests: Request[] = []
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let nl: number
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const req = JSON.parse(buffered.slice(0, nl)) as Request
        buffered = buffered.slice(nl + 1)
        requests.push(req)
        const a = answer(req)
        socket.write('raw' in a ? a.raw : JSON.stringify({ id: req.id, ...a }) + '\n')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  onTestFinished(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { path, requests, get connections () { return connections } }
}

/** An IO whose output the test reads. */
export function testIO (env: NodeJS.ProcessEnv = {}): { io: IO, out: () => string, err: () => string } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d: Buffer) => { out += d.toString() })
  stderr.on('data', (d: Buffer) => { err += d.toString() })
  return { io: { stdout, stderr, env, signal: new AbortController().signal }, out: () => out, err: () => err }
}
