/**
 * A real agent's control socket, spoken to raw: every malformed request gets
 * an error reply with a stable code (an oversized line closes the
 * connection), and the agent answers normally afterwards.
 */
import { expect, it, onTestFinished } from 'vitest'
import { once } from 'node:events'
import { createConnection, type Socket } from 'node:net'
import type { StatusResult } from '@distswarm/agent'
import { localNet } from '../harness.js'

interface Reply { id: number | null, result?: unknown, error?: { code: string, message: string } }

const MiB = 1024 * 1024

/** A raw connection to a control socket: write anything, read replies as they come. */
async function raw (path: string): Promise<{ socket: Socket, replies: Reply[], next: (n: number) => Promise<Reply[]>, closed: Promise<void> }> {
  const socket = createConnection(path)
  onTestFinished(() => { socket.destroy() })
  // Writes after the agent hung up fail with EPIPE: expected here.
  socket.on('error', () => {})
  await once(socket, 'connect')
  const replies: Reply[] = []
  let buffered = ''
  const waiters: Array<() => void> = []
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop()!
    for (const line of lines) replies.push(JSON.parse(line) as Reply)
    for (const w of waiters.splice(0)) w()
  })
  // Not events.once: it would reject on the EPIPE that comes first.
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    for (const w of waiters.splice(0)) w()
    resolve()
  }))
  const next = async (n: number): Promise<Reply[]> => {
    while (replies.length < n) {
      if (socket.destroyed) throw new Error(`connection closed after ${replies.length} of ${n} replies`)
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
    return replies.slice(0, n)
  }
  return { socket, replies, next, closed }
}

const line = (value: unknown): string => JSON.stringify(value) + '\n'

it('the control API answers bad input with stable error codes and keeps working', async () => {
  const net = await localNet()
  const agent = await net.startAgent({ name: 'box' })

  // Each bad line and the reply it must get; one connection, answered in order of the lines (all refused before any handler runs).
  const bad: Array<[string, number | null, string]> = [
    ['garbage that is not json\n', null, 'ERR_BAD_REQUEST'],
    ['{"id": 1, "method": "status"\n', null, 'ERR_BAD_REQUEST'],
    [line([1, 2, 3]), null, 'ERR_BAD_REQUEST'],
    [line(42), null, 'ERR_BAD_REQUEST'],
    [line(null), null, 'ERR_BAD_REQUEST'],
    [line('status'), null, 'ERR_BAD_REQUEST'],
    [line({ id: '7', method: 'status' }), null, 'ERR_BAD_REQUEST'],
    [line({ id: 1.5, method: 'status' }), null, 'ERR_BAD_REQUEST'],
    [line({ id: 8, method: 42 }), 8, 'ERR_BAD_REQUEST'],
    [line({ id: 9, method: 'rm -rf /' }), 9, 'ERR_UNKNOWN_METHOD'],
    [line({ id: 10, method: 'constructor' }), 10, 'ERR_UNKNOWN_METHOD'],
    [line({ id: 11, method: '__proto__' }), 11, 'ERR_UNKNOWN_METHOD'],
    [line({ id: 12, method: 'status', params: [] }), 12, 'ERR_BAD_REQUEST'],
    [line({ id: 13, method: 'status', params: 'x' }), 13, 'ERR_BAD_REQUEST'],
    [line({ id: 14, method: 'status', params: { verbose: true } }), 14, 'ERR_BAD_REQUEST'],
    [line({ id: 15, method: 'where', params: {} }), 15, 'ERR_BAD_REQUEST'],
    [line({ id: 16, method: 'where', params: { query: 5 } }), 16, 'ERR_BAD_REQUEST'],
    [line({ id: 17, method: 'where', params: { query: { toString: 'x' } } }), 17, 'ERR_BAD_REQUEST'],
    [line({ id: 18, method: 'fetch', params: { query: ['a.tar.gz'] } }), 18, 'ERR_BAD_REQUEST'],
    [line({ id: 19, method: 'fetch', params: { query: 'a.tar.gz', sha512: 1 } }), 19, 'ERR_BAD_REQUEST'],
    [line({ id: 20, method: 'fetch', params: { query: 'a.tar.gz', name: null } }), 20, 'ERR_BAD_REQUEST'],
    [line({ id: 30, method: 'ls', params: { peer: 5 } }), 30, 'ERR_BAD_REQUEST'],
    [line({ id: 31, method: 'upstream', params: { name: 'a.tar.gz', bytes: -1 } }), 31, 'ERR_BAD_REQUEST'],
    [line({ id: 32, method: 'upstream', params: { name: 'a.tar.gz', bytes: 1.5 } }), 32, 'ERR_BAD_REQUEST'],
    [line({ id: 33, method: 'upstream', params: { name: 'a.tar.gz', bytes: '5' } }), 33, 'ERR_BAD_REQUEST'],
    [line({ id: 34, method: 'upstream', params: { bytes: 5 } }), 34, 'ERR_BAD_REQUEST'],
    ['\u0000\u00ff\ufffd binary\n', null, 'ERR_BAD_REQUEST']
  ]
  const c = await raw(agent.control)
  c.socket.write(bad.map(([text]) => text).join(''))
  const got = await c.next(bad.length)
  expect(got.map((r) => [r.id, r.error?.code])).toEqual(bad.map(([, id, code]) => [id, code]))
  for (const r of got) expect(r.error!.message).toMatch(/\S/)

  // Handled errors from a handler come back by id too, and the same connection goes on answering.
  c.socket.write(line({ id: 21, method: 'fetch', params: { query: 'nobody-has-1.0.tar.gz' } }) + line({ id: 22, method: 'status' }))
  const [fetchReply, statusReply] = (await c.next(bad.length + 2)).slice(bad.length).sort((a, b) => a.id! - b.id!)
  expect(fetchReply).toMatchObject({ id: 21, error: { code: 'ERR_NOT_FOUND' } })
  expect((statusReply!.result as StatusResult).name).toBe('box')

  // Many requests pipelined in one write, good and bad mixed: every one answered once.
  const n = 3000
  const p = await raw(agent.control)
  p.socket.write(Array.from({ length: n }, (_, i) => {
    const id = i + 1
    switch (id % 3) {
      case 0: return line({ id, method: 'status' })
      case 1: return line({ id, method: 'where', params: { query: `f-${id}.tar.gz` } })
      default: return line({ id, method: 'where', params: { query: id } })
    }
  }).join(''))
  const all = await p.next(n)
  expect(all.map((r) => r.id).sort((a, b) => a! - b!)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
  for (const r of all) {
    if (r.id! % 3 === 2) expect(r.error?.code).toBe('ERR_BAD_REQUEST')
    else expect(r.result).toBeDefined()
  }

  // A line of several MiB with no newline: one ERR_LINE_TOO_LONG, then the agent hangs up.
  const big = await raw(agent.control)
  big.socket.write(Buffer.alloc(8 * MiB, 'a'))
  await big.closed
  expect(big.replies).toEqual([{ id: null, error: { code: 'ERR_LINE_TOO_LONG', message: expect.any(String) as string } }])

  // The other connection is still served, and so is a new one.
  c.socket.write(line({ id: 23, method: 'peers' }))
  expect((await c.next(bad.length + 3))[bad.length + 2]).toEqual({ id: 23, result: [] })
  expect((await agent.status()).name).toBe('box')
})
