import { format } from 'node:util'
import createDebug from 'debug'
import type { LogLevel } from '@distswarm/agent'
import type { IO } from './command.js'

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }
/** The namespace of the CLI's own events; the libraries log under distswarm:agent, distswarm:swarm, … */
const NAMESPACE = 'distswarm:cli'

export type Fields = Record<string, string | number | boolean | null | undefined>
export type Logger = Record<LogLevel, (event: string, fields?: Fields) => void>

/** One line an event: time, level, namespace, message; newlines escaped so that an event stays one line. */
function writeLine (io: IO, level: LogLevel, namespace: string, message: string): void {
  io.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${namespace} ${message.replaceAll('\n', '\\n')}\n`)
}

/** "event key=value …": values quoted when they hold spaces or quotes; empty ones left out. */
function eventText (event: string, fields: Fields): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${/[\s"]/.test(String(v)) ? JSON.stringify(String(v)) : String(v)}`)
  return parts.length ? `${event} ${parts.join(' ')}` : event
}

/** Logs the CLI's events of `level` and more severe to stderr. */
export function createLogger (io: IO, level: LogLevel = 'info'): Logger {
  const at = (l: LogLevel) => (event: string, fields: Fields = {}): void => {
    if (RANK[l] <= RANK[level]) writeLine(io, l, NAMESPACE, eventText(event, fields))
  }
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

/**
 * Sends the libraries' `debug` loggers through the same lines, as level
 * debug. At --log-level debug they are switched on: the namespaces in $DEBUG,
 * else distswarm:*. Below it they stay as $DEBUG set them (off unless set).
 */
export function routeDebugLogs (io: IO, level: LogLevel): void {
  if (level === 'debug') createDebug.enable(io.env.DEBUG || 'distswarm:*')
  // The line is formatted here, not by debug (no colours, no +ms).
  createDebug.formatArgs = function () {}
  createDebug.log = function (this: createDebug.Debugger, ...args: unknown[]) {
    writeLine(io, 'debug', this.namespace, format(...args))
  }
}
