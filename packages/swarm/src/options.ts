import { SwarmError } from './errors.js'

/**
 * `value` when it is an integer in min..max, else ERR_INVALID_OPTION naming
 * the option. For constructors: an option is checked once, where it enters.
 */
export function intOption (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw SwarmError.INVALID_OPTION(name, `expected an integer, got ${String(value)}`)
  if (value < min || value > max) throw SwarmError.INVALID_OPTION(name, `${value} is outside ${min}..${max}`)
  return value
}

/** A TCP or UDP port (0: any free one). */
export function portOption (name: string, value: number): number {
  return intOption(name, value, 0, 65535)
}
