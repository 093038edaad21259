import { describe, expect, it } from 'vitest'
import { PassThrough } from 'node:stream'
import { exitCodeOf } from '../src/command.js'
import { formatBytes, table } from '../src/format.js'
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
    expect(exitCodeOf({ code: 'ERR_NOT_FOUND' })).toBe(1)
    expect(exitCodeOf(new Error('x'))).toBe(1)
  })

  it('prints help for every command with exit 0, and usage errors with exit 2', async () => {
    for (const cmd of ['agent', 'bootstrap', 'status', 'peers', 'where', 'fetch', 'demo']) {
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

  it('formats sizes and tables for people', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(1.3 * 1024 ** 3)).toBe('1.3 GiB')
    expect(table(['A', 'BB'], [['xxx', 'y']])).toBe('A    BB\nxxx  y\n')
  })
})
