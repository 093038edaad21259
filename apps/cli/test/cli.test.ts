import { describe, expect, it, onTestFinished } from 'vitest'
import { execFileSync } from 'node:child_process'
import { PassThrough } from 'node:stream'
import createDebug from 'debug'
import { exitCodeOf } from '../src/command.js'
import { formatAgo, formatBytes, formatRtt, formatSince, paintFor, table } from '../src/format.js'
import { createLogger, routeDebugLogs } from '../src/log.js'
import { COMMAND_NAMES, loadCommands, run } from '../src/main.js'
import { LiveLines, progressLine, transferOf } from '../src/progress.js'
import { testIO } from './fake-agent.js'

const COMMANDS = await loadCommands()

const io = () => testIO()

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

  it('prints help with examples for every command with exit 0, and usage errors with exit 2', async () => {
    expect(COMMANDS.map((c) => c.meta.name)).toEqual(expect.arrayContaining(['init', 'agent', 'seed', 'bootstrap', 'status', 'peers', 'ls', 'where', 'fetch', 'verify', 'demo', 'completion']))
    // each command is loaded by the name it declares
    expect(COMMANDS.map((c) => c.meta.name)).toEqual(COMMAND_NAMES)
    for (const { meta: { name: cmd } } of COMMANDS) {
      const t = io()
      expect(await run([cmd, '--help'], t.io)).toBe(0)
      expect(t.out()).toContain(`usage: distswarm ${cmd}`)
      expect(t.out()).toMatch(/examples:\n {2}\S/)
    }
    expect(await run(['completion', 'fish'], io().io)).toBe(2)
    // no agent at the socket: 3, for every query command
    for (const args of [['status'], ['peers'], ['ls'], ['ls', '--peer', 'x'], ['where', 'x'], ['fetch', 'x'], ['verify']]) {
      expect(await run([...args, '--control', '/nonexistent/distswarm-test.sock'], io().io), args.join(' ')).toBe(3)
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

  it('formats times and round trips for people', () => {
    expect(formatAgo(400)).toBe('just now')
    expect(formatAgo(12_300)).toBe('12 s ago')
    expect(formatAgo(5 * 60_000 + 1)).toBe('5 min ago')
    expect(formatAgo(3 * 3600_000)).toBe('3 h ago')
    expect(formatAgo(50 * 3600_000)).toBe('2 d ago')
    expect(formatSince(new Date(10_000).toISOString(), 22_000)).toBe('12 s ago')
    expect(formatSince('not a date')).toBe('-')
    expect(formatRtt(null)).toBe('-')
    expect(formatRtt(0)).toBe('<1 ms')
    expect(formatRtt(85)).toBe('85 ms')
    expect(table(['NAME', 'SIZE'], [['a', '1.0 KiB'], ['bb', '12.5 MiB']], { right: [1] })).toBe('NAME      SIZE\na      1.0 KiB\nbb    12.5 MiB\n')
  })

  it('colours a terminal only, and never with NO_COLOR set to something (no-color.org)', () => {
    const tty = { isTTY: true }
    expect(paintFor(tty, {}).bold('x')).toBe('\x1b[1mx\x1b[22m')
    expect(paintFor(tty, { NO_COLOR: '' }).bold('x')).toBe('\x1b[1mx\x1b[22m') // empty: as if unset
    expect(paintFor(tty, { NO_COLOR: '1' }).bold('x')).toBe('x')
    expect(paintFor(new PassThrough(), {}).bold('x')).toBe('x')
    // and through a whole command: the help of each, to a pipe
    const t = io()
    return run(['ls', '--help'], t.io).then(() => expect(t.out()).not.toContain('\x1b'))
  })

  it('draws a progress line: bar, bytes, rate and ETA, within the terminal width', () => {
    const transfer = { name: 'linux-6.6.tar.xz', blake2b: 'ab'.repeat(64), size: 100 * 1024 * 1024, bytesDone: 60 * 1024 * 1024, startedAt: '' }
    expect(transferOf([transfer], 'linux-6.6.tar.xz')).toBe(transfer)
    expect(transferOf([transfer], 'AB'.repeat(64), 'other-name')).toBe(transfer)
    expect(transferOf([transfer], 'gcc.tar.xz')).toBeUndefined()
    // first seen at 10 MiB, 5 s ago: 10 MiB/s, 40 MiB to go
    const line = progressLine({ label: 'linux-6.6.tar.xz', transfer, first: { at: 0, done: 10 * 1024 * 1024 } }, 5000, 100)
    expect(line).toMatch(/^linux-6\.6\.tar\.xz +\[#+-+\] +60\.0 MiB \/ 100\.0 MiB +10\.0 MiB\/s +ETA 4\.0 s$/)
    expect(line.length).toBeLessThan(100)
    expect(progressLine({ label: 'x'.repeat(200), transfer }, 0, 60).length).toBeLessThan(60)
    expect(progressLine({ label: 'gcc.tar.xz' }, 0, 80)).toBe('gcc.tar.xz  asking peers…')

    // redrawn in place: up over the lines drawn, erase, draw; lines above stay
    const out = new PassThrough()
    let text = ''
    out.on('data', (d: Buffer) => { text += d.toString() })
    const live = new LiveLines(out)
    live.draw(['one', 'two'])
    live.above(out, 'done\n')
    live.draw(['three'])
    live.clear()
    expect(text).toBe('one\ntwo\n\x1b[2A\r\x1b[Jdone\nthree\n\x1b[1A\r\x1b[J')
  })

  it('prints a bash completion script made from the commands: it parses, and completes commands and their flags', async () => {
    const t = io()
    expect(await run(['completion', 'bash'], t.io)).toBe(0)
    const script = t.out()
    execFileSync('bash', ['-n'], { input: script })
    const complete = (...words: string[]): string[] => execFileSync('bash', ['-c', `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _distswarm; printf '%s\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).split('\n').filter(Boolean)
    expect(complete('distswarm', 'pe')).toEqual(['peers'])
    expect(complete('distswarm', 'portage-')).toEqual(['portage-fetch', 'portage-config'])
    expect(complete('distswarm', 'fetch', '--fr')).toEqual(['--from-file'])
    expect(complete('distswarm', 'ls', '--')).toEqual(['--peer', '--control', '--config', '--json', '--help'])
    expect(complete('distswarm', 'completion', '')).toEqual(['bash'])
    // every flag of every command is offered
    for (const c of COMMANDS) {
      expect(complete('distswarm', c.meta.name, '-').sort()).toEqual(Object.entries(c.args).flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]).sort())
    }
  })
})
