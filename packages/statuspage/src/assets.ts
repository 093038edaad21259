import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'

/** Where the page's files are: beside dist/ and src/ in the package. */
const ASSETS = new URL('../assets/', import.meta.url)

export interface Page {
  html: Buffer
  /** the Content-Security-Policy that lets exactly the page's own inline style and script run */
  csp: string
}

function sha256 (text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

/**
 * The page as one response: index.html with page.css and page.js inlined, so
 * the handler owns a single path and the browser makes no other request. The
 * policy pins the inline code by hash: nothing else runs, nothing is fetched
 * from anywhere but this origin.
 */
export async function loadPage (): Promise<Page> {
  const [html, css, js] = await Promise.all(['index.html', 'page.css', 'page.js'].map((f) => readFile(new URL(f, ASSETS), 'utf8')))
  const page = html!.replace('<style></style>', () => `<style>${css}</style>`).replace('<script></script>', () => `<script>${js}</script>`)
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(js!)}`,
    `style-src ${sha256(css!)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'"
  ].join('; ')
  return { html: Buffer.from(page, 'utf8'), csp }
}
