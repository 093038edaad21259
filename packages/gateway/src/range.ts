/** One `Range: bytes=…` header against a file of `size` bytes (RFC 9110 §14). */
export type RangeAnswer =
  /** no Range, another unit, or several ranges: the whole file, 200 */
  | { kind: 'whole' }
  /** inclusive byte offsets: 206 */
  | { kind: 'part', start: number, end: number }
  /** malformed, or beyond the end: 416 */
  | { kind: 'unsatisfiable' }

const SPEC = /^(\d*)-(\d*)$/

export function parseRange (header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'whole' }
  const m = /^\s*([A-Za-z]+)=(.*)$/.exec(header)
  if (!m) return { kind: 'unsatisfiable' }
  // A unit this server does not know is ignored, as RFC 9110 asks.
  if (m[1]!.toLowerCase() !== 'bytes') return { kind: 'whole' }
  const specs = m[2]!.split(',').map((s) => s.trim())
  const parsed = specs.map((s) => SPEC.exec(s))
  if (parsed.some((p) => p === null || (p[1] === '' && p[2] === ''))) return { kind: 'unsatisfiable' }
  // Several ranges would need multipart/byteranges: the whole file is a valid answer.
  if (parsed.length > 1) return { kind: 'whole' }
  const [, a, b] = parsed[0]!
  // Digits only, but maybe too many for a safe integer.
  const first = a === '' ? null : Number(a)
  const last = b === '' ? null : Number(b)
  if ((first !== null && !Number.isSafeInteger(first)) || (last !== null && !Number.isSafeInteger(last))) return { kind: 'unsatisfiable' }
  if (first === null) {
    // suffix: the last N bytes
    if (last === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'part', start: Math.max(0, size - last!), end: size - 1 }
  }
  if (last !== null && last < first) return { kind: 'unsatisfiable' }
  if (first >= size) return { kind: 'unsatisfiable' }
  return { kind: 'part', start: first, end: Math.min(last ?? size - 1, size - 1) }
}
