import { connect } from 'node:net'

/** Sends raw bytes (no client-side normalisation of the path) and reads the whole answer until the server closes. */
export async function raw (url: string, request: string | Buffer): Promise<{ status: number, text: string }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  socket.write(request)
  await new Promise<void>((resolve) => { socket.on('close', () => resolve()); socket.on('error', () => resolve()) })
  const text = Buffer.concat(chunks).toString('latin1')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }
}

export const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`
