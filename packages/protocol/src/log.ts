import createDebug from 'debug'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
export type LogFields = Record<string, string | number | boolean | null | undefined>

/**
 * What a library logs through: one event name and its fields a line. The
 * agent hands one in (the CLI's, which prints `warn` and `error` at the
 * default level); without one, a library logs to `debug` under its
 * namespace, as before.
 */
export interface Logger {
  error: (event: string, fields?: LogFields) => void
  warn: (event: string, fields?: LogFields) => void
  info: (event: string, fields?: LogFields) => void
  debug: (event: string, fields?: LogFields) => void
  /** A logger for a part of this one: `distswarm:agent` → `distswarm:agent:fetch`. */
  child: (name: string) => Logger
}

function fieldText (fields: LogFields | undefined): string {
  if (!fields) return ''
  let out = ''
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null || v === '') continue
    const s = String(v)
    out += ` ${k}=${/[\s"]/.test(s) ? JSON.stringify(s) : s}`
  }
  return out
}

/** A Logger that writes every level to `debug` (namespace NAMESPACE), off unless $DEBUG names it. */
export function debugLogger (namespace: string): Logger {
  const d = createDebug(namespace)
  const at = (level: LogLevel) => (event: string, fields?: LogFields): void => {
    if (d.enabled) d('%s %s%s', level, event, fieldText(fields))
  }
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (name) => debugLogger(`${namespace}:${name}`)
  }
}

/** The event text of a line: `event key=value …`, values quoted when they hold spaces or quotes. */
export function eventText (event: string, fields?: LogFields): string {
  return event + fieldText(fields)
}
