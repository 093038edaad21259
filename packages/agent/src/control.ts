import { mkdir, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import createDebug from 'debug'
import { isCode } from '@distswarm/protocol'
import { AgentError } from './errors.js'
import { LineReader } from './lines.js'
import type { ControlMethods, Method } from './api.js'

const log = createDebug('distswarm:control')

/** Longest response line the client takes: responses list inventories. */
const MAX_RESPONSE_LINE = 64 * 1024 * 1024

/** 0777 less this is 0660: read and write for the socket's owner and group, nothing for others. */
const SOCKET_UMASK = 0o117

export type Handlers = { [M in Method]: (params: ControlMethods[M]['params']) => Promise<ControlMethods[M]['result']> }

/** How long a connection refused for an oversized line is drained before it is cut. */
const LINGER_MS = 2000

export interface ControlServerInit {
  /** Longest request line, in bytes; a longer one is answered ERR_LINE_TOO_LONG and the connection closed. Default 64 KiB: requests are tiny. */
  maxLineBytes?: number
  /** Requests of one connection being answered at a time; later ones wait their turn. Default 16. */
  maxInFlight?: number
  /** Bytes of request lines waiting for a turn before the connection is no longer read. Default 64 KiB. */
  maxWaitingBytes?: number
}

const DEFAULTS: Required<ControlServerInit> = { maxLineBytes: 64 * 1024, maxInFlight: 16, maxWaitingBytes: 64 * 1024 }

interface Request { id: number, method: Method, params: Record<string, unknown> }

/** The type of each param a method takes, '?' when optional. Any other param is refused. */
type ParamType = 'string' | 'string?' | 'boolean?' | 'number'
const PARAMS: { [M in Method]: Record<string, ParamType> } = {
  status: {},
  peers: {},
  where: { query: 'string' },
  fetch: { query: 'string', sha512: 'string?', name: 'string?' },
  verify: { remove: 'boolean?' },
  gc: { dryRun: 'boolean?' },
  ls: { peer: 'string?' },
  upstream: { name: 'string', bytes: 'number' },
  binpkgs: { atom: 'string?' }
}

function errorBody (err: unknown): { code: string, message: string } {
  const e = err as { code?: unknown, message?: unknown }
  return {
    code: typeof e.code === 'string' && e.code.startsWith('ERR_') ? e.code : 'ERR_INTERNAL',
    message: typeof e.message === 'string' ? e.message : String(err)
  }
}

/** Why `params` do not fit `method`, or null. */
function paramsProblem (method: Method, params: Record<string, unknown>): string | null {
  const spec: Record<string, ParamType> = PARAMS[method]
  for (const key of Object.keys(params)) {
    if (!Object.hasOwn(spec, key)) return `${method} takes no param ${JSON.stringify(key.slice(0, 64))}`
  }
  for (const [key, type] of Object.entries(spec)) {
    const want = type.replace('?', '')
    if (params[key] === undefined) {
      if (type === want) return `${method} needs param ${key}`
    } else if (typeof params[key] !== want) {
      return `${method} param ${key} must be a ${want}`
    } else if (want === 'number' && !(Number.isSafeInteger(params[key]) && (params[key] as number) >= 0)) {
      // every number param counts something
      return `${method} param ${key} must be a non-negative integer`
    }
  }
  return null
}

type Parsed = { ok: true, req: Request } | { ok: false, id: number | null, error: AgentError }

/** The request on `line`, or why it is none and the id to answer under (null when the line has no usable one). */
function parseRequest (line: string): Parsed {
  const bad = (id: number | null, error: AgentError): Parsed => ({ ok: false, id, error })
  let req: unknown
  try {
    req = JSON.parse(line)
  } catch {
    return bad(null, AgentError.BAD_REQUEST('not JSON'))
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) {
    return bad(null, AgentError.BAD_REQUEST('expected {"id": integer, "method": string, "params": object}'))
  }
  const r = req as { id?: unknown, method?: unknown, params?: unknown }
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id)) return bad(null, AgentError.BAD_REQUEST('id must be an integer'))
  if (typeof r.method !== 'string') return bad(r.id, AgentError.BAD_REQUEST('method must be a string'))
  if (!Object.hasOwn(PARAMS, r.method)) return bad(r.id, AgentError.UNKNOWN_METHOD(r.method))
  const method = r.method as Method
  const params = r.params ?? {}
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return bad(r.id, AgentError.BAD_REQUEST('params must be an object'))
  const problem = paramsProblem(method, params as Record<string, unknown>)
  if (problem !== null) return bad(r.id, AgentError.BAD_REQUEST(problem))
  return { ok: true, req: { id: r.id, method, params: params as Record<string, unknown> } }
}

/**
 * Answers one connection, one request a line. At most maxInFlight requests
 * run at a time; the lines behind them wait, and once maxWaitingBytes of
 * them wait, or the client does not read its replies, the socket is not
 * read either: a client can make the agent hold only bounded memory.
 */
function serve (socket: Socket, handlers: Handlers, limits: Required<ControlServerInit>): void {
  const reader = new LineReader(limits.maxLineBytes)
  const waiting: string[] = []
  let waitingBytes = 0
  let inFlight = 0
  let done = false

  const reply = (body: object): void => {
    if (!done) socket.write(JSON.stringify(body) + '\n')
  }
  const answer = (line: string): void => {
    const parsed = parseRequest(line)
    if (!parsed.ok) {
      reply({ id: parsed.id, error: errorBody(parsed.error) })
      return
    }
    const req = parsed.req
    inFlight++
    const handler = handlers[req.method] as (p: unknown) => Promise<unknown>
    // A handler that throws synchronously is answered like one that rejects.
    Promise.resolve().then(() => handler(req.params)).then(
      (result) => reply({ id: req.id, result }),
      (err: unknown) => reply({ id: req.id, error: errorBody(err) })
    ).finally(() => {
      inFlight--
      pump()
    })
  }
  const pump = (): void => {
    while (!done && waiting.length > 0 && inFlight < limits.maxInFlight && !socket.writableNeedDrain) {
      const line = waiting.shift()!
      waitingBytes -= Buffer.byteLength(line)
      answer(line)
    }
    if (done) return
    if (waitingBytes < limits.maxWaitingBytes && !socket.writableNeedDrain) socket.resume()
    else socket.pause()
  }
  const close = (): void => {
    done = true
    waiting.length = 0
    waitingBytes = 0
  }

  socket.on('data', (chunk: Buffer) => {
    if (done) return
    let lines: string[]
    try {
      lines = reader.push(chunk)
    } catch (err) {
      // Answered once, then closed: reading on would buffer without bound.
      reply({ id: null, error: errorBody(err) })
      close()
      // Half-close and discard what still comes for a moment: a client still
      // writing would otherwise get EPIPE and may never read the reply.
      socket.end()
      socket.resume()
      setTimeout(() => socket.destroy(), LINGER_MS).unref()
      return
    }
    for (const line of lines) {
      if (!line.trim()) continue
      waiting.push(line)
      waitingBytes += Buffer.byteLength(line)
    }
    pump()
  })
  socket.on('drain', pump)
  socket.on('close', close)
  socket.on('error', (err) => log('control client error: %s', err.message))
}

/**
 * Serves the control API on a Unix socket, mode 0660: the agent's user and
 * group (typically portage, whose FETCHCOMMAND asks the agent) may drive it,
 * nobody else; the kernel refuses anyone else's connect(). Refuses to start
 * when another agent answers there.
 */
export async function startControlServer (path: string, handlers: Handlers, init: ControlServerInit = {}): Promise<Server> {
  const limits = { ...DEFAULTS, ...init }
  // 0750: the group must reach the socket when the agent makes the dir (an existing dir keeps its mode).
  await mkdir(dirname(path), { recursive: true, mode: 0o750 })
  await removeStaleSocket(path)
  const server = createServer((socket) => serve(socket, handlers, limits))
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.once('listening', resolve)
  })
  // The socket is born 0660 (bind() applies the umask), whatever umask the
  // agent runs under: no moment when others may connect, as a chmod after
  // binding would leave (and chmod follows symlinks). listen() binds a Unix
  // socket synchronously, so the umask is restored before any other code of
  // this process creates a file.
  const umask = process.umask(SOCKET_UMASK)
  try {
    server.listen(path)
  } finally {
    process.umask(umask)
  }
  await listening
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
  /** Why the connection is of no more use; calls made after fail with it at once. */
  private broken: Error | null = null

  private constructor (path: string, socket: Socket) {
    this.path = path
    this.socket = socket
    const reader = new LineReader(MAX_RESPONSE_LINE)
    socket.on('data', (chunk: Buffer) => {
      let lines: string[]
      try {
        lines = reader.push(chunk)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      for (const line of lines) if (line.trim() && !this.broken) this.onLine(line)
    })
    socket.on('close', () => this.fail(AgentError.CONTROL_CLOSED()))
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
    if (this.broken) return Promise.reject(this.broken)
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
    let msg: unknown
    try {
      msg = JSON.parse(line)
    } catch {
      return this.fail(AgentError.BAD_REPLY(`${this.path} sent a line that is not JSON`))
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.fail(AgentError.BAD_REPLY(`${this.path} sent JSON that is not a reply object`))
    const { id, result, error } = msg as { id?: unknown, result?: unknown, error?: unknown }
    const failure = error === undefined ? null : errorOf(error)
    if (failure === undefined) return this.fail(AgentError.BAD_REPLY(`${this.path} sent an error without a code and a message`))
    // id null: the agent could not read a request of ours (a line too long, …); which one, it cannot say
    if (id === null && failure) return this.fail(failure)
    const p = typeof id === 'number' ? this.pending.get(id) : undefined
    if (!p) return this.fail(AgentError.BAD_REPLY(`${this.path} answered a request never made (id ${JSON.stringify(id)?.slice(0, 32)})`))
    this.pending.delete(id as number)
    if (failure) p.reject(failure)
    else p.resolve(result)
  }

  /** Fails every call waiting and every later one with `err`, and drops the connection: the replies are out of step. */
  private fail (err: Error): void {
    this.broken ??= err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.socket.destroy()
  }
}

/** The error of an error reply; undefined when it is not one. A code this client does not know (a newer agent's) keeps its name in the message. */
function errorOf (error: unknown): AgentError | undefined {
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown, message?: unknown }
  if (typeof code !== 'string' || typeof message !== 'string') return undefined
  return isCode(code) ? new AgentError(code, message) : new AgentError('ERR_INTERNAL', `${code.slice(0, 64)}: ${message}`)
}
