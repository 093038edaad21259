import type { IO } from './command.js'

/** One line an event on stderr: time, event, then key=value fields. */
export function logEvent (io: IO, event: string, fields: Record<string, string | number | null | undefined> = {}): void {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${/[\s"]/.test(String(v)) ? JSON.stringify(String(v)) : String(v)}`)
  io.stderr.write(`${new Date().toISOString()} ${event}${parts.length ? ' ' + parts.join(' ') : ''}\n`)
}
