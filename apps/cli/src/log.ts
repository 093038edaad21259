import { format } from 'node:util'
import createDebug from 'debug'
import { eventText, type Logger, type LogFields, type LogLevel } from '@distswarm/protocol'
import type { IO } from './command.js'

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }
/** The namespace of the CLI's own events; the libraries log under distswarm:agent, distswarm:swarm, … */
const NAMESPACE = 'distswarm:cli'

export type Fields = LogFields
export type { Logger }

/** One line an event: time, level, namespace, message; newlines escaped so that an event stays one line. */
function writeLine (io: IO, level: LogLevel, namespace: string, message: string): void {
  io.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${namespace} ${message.replaceAll('\n', '\\n')}\n`)
}

/**
 * Logs events of `level` and more severe to stderr. The agent hands
 * `child('agent')` and the like to the libraries, so their warnings and
 * errors show at the default level under their own namespace.
 */
export function createLogger (io: IO, level: LogLevel = 'info', namespace = NAMESPACE): Logger {
  const at = (l: LogLevel) => (event: string, fields?: Fields): void => {
    if (RANK[l] <= RANK[level]) writeLine(io, l, namespace, eventText(event, fields))
  }
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (name) => createLogger(io, level, `${namespace === NAMESPACE ? 'distswarm' : namespace}:${name}`)
  }
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
