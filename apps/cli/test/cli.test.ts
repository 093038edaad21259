import { describe, expect, it, onTestFinished } from 'vitest'
import { PassThrough } from 'node:stream'
import createDebug from 'debug'
import { exitCodeOf } from '../src/command.js'
import { formatBytes, table } from '../src/format.js'
import { createLogger, routeDebugLogs } from '../src/log.js'
import { run } from '../src/main.js'

function io () {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d: Buffer) => { out += d.toString() })
  stderr.on('data', (d: Buffer) => { err += d.toString() })
  return { io: { stdout, stderr, env: {}, signal: new AbortController().signal }, out: () => out, err: () => err }
}

describe('cli', () => {
  it('maps error codes to the exit code contract', () => {
    expect(exitCodeOf({ code: 'ERR_AGENT_UNREACHABLE' })).toBe(3)
    expect(exitCodeOf({ code: 'ERR_CONTROL_CLOSED' })).toBe(3)
    expect(exitCodeOf({ code: 'ERR_USAGE' })).toBe(2)
    expect(exitCodeOf({ code: 'ERR_CONFIG' })).toBe(2)
    expect(exitCodeOf({ code: 'ERR_CONFIG_EXISTS' })).toBe(2)
    expect(exitCodeOf({ code: 'ERR_SEED_ONLY' })).toBe(1)
    expect(exitCodeOf({ code: 'ERR_NOT_FOUND' })).toBe(1)
    expect(exitCodeOf(new Error('x'))).toBe(1)
  })

  it('prints help for every command with exit 0, and usage errors with exit 2', async () => {
    for (const cmd of ['init', 'agent', 'seed', 'bootstrap', 'status', 'peers', 'where', 'fetch', 'demo']) {
      const t = io()
      expect(await run([cmd, '--help'], t.io)).toBe(0)
      expect(t.out()).toContain(`usage: distswarm ${cmd}`)
      expect(t.out()).toContain('examples:')
    }
    const t = io()
    expect(await run(['where'], t.io)).toBe(2)
    expect(t.err()).toMatch(/expected 1 argument/)
    expect(await run([], io().io)).toBe(2)
  })

  it('logs one line an event at the level asked and above: time, level, namespace, message', () => {
    const t = io()
    const log = createLogger(t.io, 'warn')
    log.info('peer.ready', { name: 'a' })
    log.debug('noise')
    log.warn('fetch.failed', { name: 'x y', code: 'ERR_NOT_FOUND', why: 'line one\nline two' })
    log.error('boom')
    const lines = t.err().split('\n').filter(Boolean)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z warn  distswarm:cli fetch\.failed name="x y" code=ERR_NOT_FOUND why="line one\\nline two"$/)
    expect(lines[1]).toMatch(/Z error distswarm:cli boom$/)
  })

  it("routes the libraries' distswarm:* debug loggers into the same lines at --log-level debug", () => {
    onTestFinished(() => { createDebug.disable() })
    const t = io()
    routeDebugLogs(t.io, 'debug')
    createDebug('distswarm:test')('hashed %d files', 3)
    createDebug('other:lib')('not ours')
    expect(t.err()).toMatch(/^\S+Z debug distswarm:test hashed 3 files\n$/)
  })

  it('formats sizes and tables for people', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(1.3 * 1024 ** 3)).toBe('1.3 GiB')
    expect(table(['A', 'BB'], [['xxx', 'y']])).toBe('A    BB\nxxx  y\n')
  })
})
