import { chmod, mkdir, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import createDebug from 'debug'
import { AgentError } from './errors.js'
import type { ControlMethods, Method } from './api.js'

const log = createDebug('distswarm:control')

/** Longest request or response line. Requests are tiny; responses list inventories. */
const MAX_REQUEST_LINE = 64 * 1024
const MAX_RESPONSE_LINE = 64 * 1024 * 1024

export type Handlers = { [M in Method]: (params: ControlMethods[M]['params']) => Promise<ControlMethods[M]['result']> }

interface Request { id: number, method: string, params?: unknown }

function errorBody (err: unknown): { code: string, message: string } {
  const e = err as { code?: unknown, message?: unknown }
  return {
    code: typeof e.code === 'string' && e.code.startsWith('ERR_') ? e.code : 'ERR_INTERNAL',
    message: typeof e.message === 'string' ? e.message : String(err)
  }
}

/** Splits a socket's bytes into lines, refusing one longer than `max`. */
function onLines (socket: Socket, max: number, onLine: (line: string) => void, onTooLong: () => void): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffered += chunk
    let nl: number
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      if (line.trim()) onLine(line)
    }
    if (buffered.length > max) {
      buffered = ''
      onTooLong()
    }
  })
}

function parseRequest (line: string): Request {
  let req: unknown
  try {
    req = JSON.parse(line)
  } catch {
    throw AgentError.BAD_REQUEST('not JSON')
  }
  const r = req as Partial<Request>
  if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.id) || typeof r.method !== 'string') {
    throw AgentError.BAD_REQUEST('expected {"id": integer, "method": string, "params": object}')
  }
  if (r.params !== undefined && (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params))) {
    throw AgentError.BAD_REQUEST('params must be an object')
  }
  return r as Request
}

/**
 * Serves the control API on a Unix socket, mode 0660: the agent's user and
 * group (typically portage, whose FETCHCOMMAND asks the agent) may drive it,
 * nobody else. Refuses to start when another agent answers there.
 */
export async function startControlServer (path: string, handlers: Handlers): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await removeStaleSocket(path)
  const server = createServer((socket) => {
    const reply = (body: object): void => { socket.write(JSON.stringify(body) + '\n') }
    socket.on('error', (err) => log('control client error: %s', err.message))
    onLines(socket, MAX_REQUEST_LINE, (line) => {
      let req: Request
      try {
        req = parseRequest(line)
      } catch (err) {
        reply({ id: null, error: errorBody(err) })
        return
      }
      const handler = Object.hasOwn(handlers, req.method) ? handlers[req.method as Method] as (p: unknown) => Promise<unknown> : undefined
      if (!handler) {
        reply({ id: req.id, error: errorBody(AgentError.BAD_REQUEST(`unknown method ${JSON.stringify(req.method.slice(0, 64))}`)) })
        return
      }
      handler(req.params ?? {}).then(
        (result) => reply({ id: req.id, result }),
        (err: unknown) => reply({ id: req.id, error: errorBody(err) }))
    }, () => {
      reply({ id: null, error: errorBody(AgentError.BAD_REQUEST(`request longer than ${MAX_REQUEST_LINE} bytes`)) })
      socket.end()
    })
  })
  const umask = process.umask(0o117) // the socket is born 0660, no window where others may connect
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
  } finally {
    process.umask(umask)
  }
  await chmod(path, 0o660)
  return server
}

async function removeStaleSocket (path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => resolve(false))
  })
  if (alive) throw AgentError.CONTROL_IN_USE(path)
  await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
}

/** The CLI's side of the control API. */
export class ControlClient {
  readonly path: string
  private readonly socket: Socket
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

  private constructor (path: string, socket: Socket) {
    this.path = path
    this.socket = socket
    onLines(socket, MAX_RESPONSE_LINE, (line) => this.onLine(line), () => this.failAll(AgentError.BAD_REQUEST('response too long')))
    socket.on('close', () => this.failAll(AgentError.CONTROL_CLOSED()))
    socket.on('error', () => {})
  }

  /** Connects; throws ERR_AGENT_UNREACHABLE when no agent answers at `path`. */
  static async connect (path: string): Promise<ControlClient> {
    const socket = createConnection(path)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', (err) => reject(AgentError.UNREACHABLE(path, err)))
    })
    return new ControlClient(path, socket)
  }

  call<M extends Method> (method: M, params: ControlMethods[M]['params']): Promise<ControlMethods[M]['result']> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.socket.write(JSON.stringify({ id, method, params }) + '\n')
    })
  }

  close (): void {
    this.socket.end()
  }

  private onLine (line: string): void {
    let msg: { id?: number, result?: unknown, error?: { code: string, message: string } }
    try {
      msg = JSON.parse(line) as typeof msg
    } catch {
      return this.failAll(AgentError.BAD_REQUEST('agent sent a line that is not JSON'))
    }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id)
    if (!p) return
    this.pending.delete(msg.id!)
    if (msg.error) p.reject(new AgentError(msg.error.code, msg.error.message))
    else p.resolve(msg.result)
  }

  private failAll (err: Error): void {
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}
