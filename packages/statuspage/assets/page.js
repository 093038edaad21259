// @ts-check
// The status page's script: live data from /api/events (server-sent events),
// or polling /api/snapshot when the stream is refused. Every text from the
// agent or its peers goes into the page as a text node, never as markup.
'use strict';
(() => {
  /** @typedef {{ at: number, ms: number, fromPeers: number, upstream: number, served: number }} Sample */
  /** @typedef {{ intervalMs: number, capacity: number, samples: Sample[] }} History */
  /** @typedef {{ name: string, blake2b: string, size: number, bytesDone: number, startedAt: string, sources?: Array<{ name: string, publicKey: string, holds: string, pieces?: number }> }} Transfer */
  /** @typedef {{ name: string, publicKey: string, address: string | null, path: string, files: number, bytesSent: number, bytesReceived: number, rttMs: number | null, faults: number, lastSeenAt?: string, connectedAt: string }} Peer */
  /** @typedef {{ at: string, name: string, outcome: string, bytes: number | null, durationMs: number | null, code: string | null }} Fetch */
  /** @typedef {{ at: string, status: any, peers: Peer[], fetches: Fetch[] }} Snapshot */

  const POLL_MS = 2000
  /** No new status for this long: the page says its numbers are stale. */
  const STALE_MS = 6000
  const HISTORY_POLL_MS = 10000
  const SERIES = /** @type {const} */ ([['served', 'served to peers'], ['upstream', 'upstream'], ['fromPeers', 'from peers']])
  const SVG = 'http://www.w3.org/2000/svg'

  /** @param {string} id */
  const $ = (id) => {
    const e = document.getElementById(id)
    if (e === null) throw new Error(`#${id} missing`)
    return e
  }

  /**
   * An element with attributes and children; strings become text nodes.
   * @param {string} tag
   * @param {Record<string, string | number | null | undefined>} [attrs]
   * @param {Array<Node | string>} children
   */
  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, String(v))
    e.append(...children)
    return e
  }

  /**
   * @param {string} tag
   * @param {Record<string, string | number>} attrs
   */
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag)
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
    return e
  }

  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  /** @param {number} n */
  const bytes = (n) => {
    if (!Number.isFinite(n)) return '-'
    let i = 0
    while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++ }
    return `${i === 0 || n >= 10 ? Math.round(n) : n.toFixed(1)} ${UNITS[i]}`
  }
  /** @param {number} n bytes a second */
  const rate = (n) => `${bytes(n)}/s`
  /** @param {number} ms */
  const duration = (ms) => {
    const s = Math.floor(ms / 1000)
    if (s < 60) return `${s} s`
    const m = Math.floor(s / 60)
    if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`
    const h = Math.floor(m / 60)
    if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
    return `${Math.floor(h / 24)} d ${h % 24} h`
  }
  /** @param {string | undefined} iso @param {number} now */
  const since = (iso, now) => {
    const t = iso ? Date.parse(iso) : NaN
    if (Number.isNaN(t)) return '-'
    return now - t < 1000 ? 'just now' : `${duration(now - t)} ago`
  }
  /** @param {number} n @param {string} one */
  const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`

  // ---- this box ----

  /** @param {any} s */
  function renderBox (s) {
    document.title = `${s.name} · distswarm`
    $('box-name').textContent = s.name
    const t = s.traffic
    const f = s.fetches
    /** @type {Array<[string, string, string, (number | null)?]>} */
    const rows = [
      ['name', 'Name', s.name + (s.seed ? ' (seed: serves, never fetches)' : '')],
      ['key', 'Key', s.publicKey],
      ['network', 'Network', s.network],
      ['uptime', 'Uptime', duration(s.uptimeMs), s.uptimeMs],
      ['inventory', 'Inventory', `${plural(s.files, 'file')}, ${bytes(s.bytes)}`, s.files],
      ['peers', 'Peers', String(s.peers), s.peers]
    ]
    if (f) rows.push(['fetches', 'Fetches', `${f.completed} done, ${f.failed} failed, ${f.inFlight} in flight`, f.completed])
    if (t) rows.push(['traffic', 'Traffic', `${bytes(t.fetchedFromPeers)} from peers, ${bytes(t.fetchedUpstream)} upstream, ${bytes(t.servedToPeers)} served`])
    if (s.manifest) {
      rows.push(['manifests', 'Manifests', s.manifest.repos.length ? `${s.manifest.names} distfiles in ${s.manifest.repos.join(' ')}` : 'none'])
    }
    const dl = $('facts')
    dl.replaceChildren(...rows.flatMap(([id, label, text, value]) => [
      el('dt', {}, label),
      el('dd', { id: `f-${id}`, class: id === 'key' || id === 'network' ? 'mono' : null, 'data-value': value ?? null }, text)
    ]))

    const c = s.cache
    const meter = /** @type {HTMLMeterElement} */ ($('cache-meter'))
    if (c && typeof c.bytes === 'number') {
      const max = typeof c.maxBytes === 'number' && c.maxBytes > 0 ? c.maxBytes : null
      $('cache-text').textContent = max === null
        ? `${bytes(c.bytes)} (no limit)`
        : `${bytes(c.bytes)} of ${bytes(max)} (${Math.round(c.bytes / max * 100)}%)`
      $('cache-text').dataset.value = String(c.bytes)
      meter.hidden = max === null
      meter.value = max === null ? 0 : Math.min(1, c.bytes / max)
    } else {
      $('cache-text').textContent = '-'
      meter.hidden = true
    }
  }

  // ---- transfers ----

  /** @type {Map<string, { li: HTMLElement, progress: HTMLProgressElement, detail: HTMLElement, sources: HTMLElement, done: number, at: number, rate: number | null }>} */
  const transfers = new Map()

  /** @param {Transfer[]} list @param {number} now */
  function renderTransfers (list, now) {
    const ul = $('transfer-list')
    const seen = new Set()
    for (const x of list) {
      seen.add(x.blake2b)
      let t = transfers.get(x.blake2b)
      if (!t) {
        const progress = /** @type {HTMLProgressElement} */ (el('progress', { max: x.size || 1, value: 0, 'aria-label': x.name }))
        const detail = el('div', { class: 'detail' })
        const sources = el('div', { class: 'detail sources' })
        const li = el('li', { 'data-blake2b': x.blake2b }, el('div', { class: 'name', title: x.blake2b }, x.name), progress, detail, sources)
        t = { li, progress, detail, sources, done: x.bytesDone, at: now, rate: null }
        transfers.set(x.blake2b, t)
        ul.append(li)
      } else if (now > t.at && x.bytesDone >= t.done) {
        const r = (x.bytesDone - t.done) / (now - t.at) * 1000
        t.rate = t.rate === null ? r : t.rate * 0.6 + r * 0.4 // smoothed: the bar moves in steps
        t.done = x.bytesDone
        t.at = now
      }
      t.progress.max = x.size || 1
      t.progress.value = x.bytesDone
      t.progress.dataset.done = String(x.bytesDone)
      const pct = x.size > 0 ? Math.floor(x.bytesDone / x.size * 100) : 100
      const parts = [`${bytes(x.bytesDone)} of ${bytes(x.size)}`, `${pct}%`]
      if (t.rate !== null) {
        parts.push(rate(t.rate))
        if (t.rate > 0) parts.push(`${duration((x.size - x.bytesDone) / t.rate * 1000)} left`)
      }
      parts.push(`started ${since(x.startedAt, now)}`)
      t.detail.textContent = parts.join(' · ')
      // Who it may take bytes from: whole-file holders, then boxes relaying pieces of their own download.
      const from = (x.sources ?? []).map((s) => s.holds === 'pieces' ? `${s.name || s.publicKey.slice(0, 8)} (${s.pieces ?? 0} pieces)` : (s.name || s.publicKey.slice(0, 8)))
      t.sources.textContent = from.length ? `from ${from.join(', ')}` : 'no source connected'
    }
    for (const [k, t] of transfers) {
      if (!seen.has(k)) { t.li.remove(); transfers.delete(k) }
    }
    $('transfers-count').textContent = list.length ? `(${list.length})` : ''
    $('transfers-none').hidden = list.length > 0
  }

  // ---- peers and fetches ----

  /**
   * A table row; each cell is [content, label, class?, title?]. The cell at
   * `head` heads the row's card on a phone.
   * @param {Array<[string | Node, string, string?, string?]>} cells
   * @param {number} [head]
   */
  const row = (cells, head = 0) => el('tr', {}, ...cells.map(([content, label, cls, title], i) =>
    el('td', { 'data-label': label, class: [i === head ? 'first' : '', cls ?? ''].join(' ').trim() || null, title: title ?? null }, content)))

  /** @param {Peer[]} peers @param {number} now */
  function renderPeers (peers, now) {
    const sorted = [...peers].sort((a, b) => (a.name || '').localeCompare(b.name || '') || a.publicKey.localeCompare(b.publicKey))
    $('peer-rows').replaceChildren(...sorted.map((p) => {
      const tr = row([
        [p.name || '?', 'Name', 'wrap', p.publicKey],
        [p.address ?? '-', 'Address', 'mono'],
        [p.path, 'Path'],
        [String(p.files), 'Files', 'num'],
        [bytes(p.bytesSent), 'Sent', 'num'],
        [bytes(p.bytesReceived), 'Received', 'num'],
        [p.rttMs === null || p.rttMs === undefined ? '-' : `${p.rttMs} ms`, 'RTT', 'num'],
        [String(p.faults), 'Faults', p.faults > 0 ? 'num faulty' : 'num'],
        [since(p.lastSeenAt ?? p.connectedAt, now), 'Last seen']
      ])
      tr.dataset.key = p.publicKey
      return tr
    }))
    $('peers-count').textContent = peers.length ? `(${peers.length})` : ''
    $('peers-none').hidden = peers.length > 0
    $('peer-table').hidden = peers.length === 0
  }

  /** @type {Record<string, string>} */
  const OUTCOMES = { peers: 'peers', local: 'local', miss: 'miss', upstream: 'upstream', failed: 'failed' }

  /** @param {Fetch[]} fetches @param {number} now */
  function renderFetches (fetches, now) {
    $('fetch-rows').replaceChildren(...fetches.map((f) => {
      const outcome = OUTCOMES[f.outcome] ?? 'failed'
      const tr = row([
        [since(f.at, now), 'When'],
        [f.name, 'File', 'wrap'],
        // the error code (from the agent) as the badge's tooltip
        [el('span', { class: `badge o-${outcome}`, title: f.code ?? null }, outcome), 'From'],
        [f.bytes === null ? '-' : bytes(f.bytes), 'Size', 'num'],
        [f.durationMs === null ? '-' : duration(f.durationMs).replace(/^0 s$/, `${Math.round(f.durationMs)} ms`), 'Took', 'num']
      ], 1)
      return tr
    }))
    $('fetches-none').hidden = fetches.length > 0
    $('fetch-table').hidden = fetches.length === 0
  }

  // ---- traffic chart ----

  /** @type {History} */
  let history = { intervalMs: 10000, capacity: 360, samples: [] }

  /**
   * A round rate at or above `v` for the top of the chart: 1, 2 or 5 times a
   * power of ten, in the binary unit the labels use (5 MiB/s, not 4.77 MiB/s).
   * @param {number} v
   */
  const niceCeil = (v) => {
    if (v <= 1024) return 1024
    let unit = 1
    while (v / unit >= 1024 && unit < 1024 ** 5) unit *= 1024
    const p = Math.pow(10, Math.floor(Math.log10(v / unit)))
    for (const m of [1, 2, 5, 10]) if (m * p * unit >= v) return m * p * unit
    return 10 * p * unit
  }

  function renderChart () {
    const chart = $('chart')
    const box = chart.getBoundingClientRect()
    const W = Math.max(240, Math.round(box.width) || 600)
    const H = Math.max(120, Math.round(box.height) || 176)
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`)
    const left = 64
    const right = 8
    const top = 8
    const bottom = 20
    const span = history.capacity * history.intervalMs
    const end = Date.now()
    const start = end - span
    const samples = history.samples.filter((s) => s.at > start && s.ms > 0)
    /** @param {Sample} s @param {'fromPeers' | 'upstream' | 'served'} k */
    const perSecond = (s, k) => s[k] / s.ms * 1000
    let max = 0
    for (const s of samples) for (const [k] of SERIES) max = Math.max(max, perSecond(s, k))
    const yMax = niceCeil(max)
    /** @param {number} t */
    const X = (t) => left + (t - start) / span * (W - left - right)
    /** @param {number} v */
    const Y = (v) => top + (1 - v / yMax) * (H - top - bottom)

    /** @type {Element[]} */
    const parts = []
    for (const f of [0, 0.5, 1]) {
      const y = Y(yMax * f)
      parts.push(svg('line', { class: 'grid', x1: left, x2: W - right, y1: y, y2: y }))
      const label = svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' })
      label.textContent = rate(yMax * f)
      parts.push(label)
    }
    for (const [t, text, anchor] of /** @type {Array<[number, string, string]>} */ ([[start, `${duration(span)} ago`, 'start'], [start + span / 2, `${duration(span / 2)} ago`, 'middle'], [end, 'now', 'end']])) {
      const label = svg('text', { x: X(t), y: H - 4, 'text-anchor': anchor })
      label.textContent = text
      parts.push(label)
    }
    for (const [k] of SERIES) {
      // one run of points per stretch without a missing sample
      let line = ''
      let area = ''
      /** @type {Array<[number, number]>} */
      let run = []
      const flush = () => {
        const first = run[0]
        if (first === undefined) return
        // a lone sample is drawn as a short dash
        /** @type {Array<[number, number]>} */
        const pts = run.length === 1 ? [[first[0] - 2, first[1]], [first[0] + 2, first[1]]] : run
        const d = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L')
        const base = Y(0).toFixed(1)
        line += `M${d}`
        area += `M${pts[0]?.[0].toFixed(1)},${base}L${d}L${pts[pts.length - 1]?.[0].toFixed(1)},${base}Z`
        run = []
      }
      let prev = null
      for (const s of samples) {
        if (prev !== null && s.at - prev > history.intervalMs * 1.5) flush()
        run.push([X(s.at), Y(perSecond(s, k))])
        prev = s.at
      }
      flush()
      const cls = k === 'fromPeers' ? 'peers' : k
      if (area) parts.push(svg('path', { class: `a ${cls}`, d: area }))
      if (line) parts.push(svg('path', { class: `s ${cls}`, d: line }))
    }
    chart.replaceChildren(...parts)
    $('traffic-h').textContent = `Traffic, last ${span === 3600000 ? 'hour' : duration(span)}`

    $('legend').replaceChildren(...[...SERIES].reverse().map(([k, label]) => {
      const total = samples.reduce((sum, s) => sum + s[k], 0)
      return el('li', { 'data-series': k }, el('i', { class: k === 'fromPeers' ? 'peers' : k }), `${label} `, el('b', {}, bytes(total)))
    }))
  }

  // ---- data ----

  let lastUpdate = 0
  /** the agent's failure is on show: the stale notice does not replace it */
  let failing = false

  /** @param {Snapshot} snap */
  function render (snap) {
    lastUpdate = Date.now()
    failing = false
    const now = Date.parse(snap.at) || Date.now()
    renderBox(snap.status)
    renderTransfers(snap.status.transfers ?? [], now)
    renderPeers(snap.peers ?? [], now)
    renderFetches(snap.fetches ?? [], now)
    $('updated').textContent = `updated ${new Date(now).toLocaleTimeString()}`
  }

  /** @param {string} text @param {'live' | 'bad' | ''} state */
  const connection = (text, state) => {
    const c = $('conn')
    c.textContent = text
    c.className = `conn ${state}`.trim()
  }

  /** @param {History} h */
  const setHistory = (h) => {
    if (h && Array.isArray(h.samples)) history = h
    renderChart()
  }

  /** @param {string} path */
  const getJson = async (path) => {
    const r = await fetch(path, { headers: { accept: 'application/json' } })
    const body = await r.json()
    if (!r.ok) throw new Error(body?.error?.message ?? `HTTP ${r.status}`)
    return body
  }

  /** The stream was refused (too many clients) or is gone for good: ask now and then instead. */
  function poll () {
    const once = () => getJson('/api/snapshot').then((s) => { render(s); connection('polling', 'live') }, (err) => { failing = true; connection(err.message, 'bad') })
    const hist = () => getJson('/api/history').then(setHistory, () => {})
    once()
    hist()
    setInterval(once, POLL_MS)
    setInterval(hist, HISTORY_POLL_MS)
  }

  function live () {
    const es = new EventSource('/api/events')
    es.addEventListener('open', () => connection('live', 'live'))
    es.addEventListener('history', (e) => setHistory(JSON.parse(/** @type {MessageEvent} */ (e).data)))
    es.addEventListener('sample', (e) => {
      history.samples.push(JSON.parse(/** @type {MessageEvent} */ (e).data))
      if (history.samples.length > history.capacity) history.samples.splice(0, history.samples.length - history.capacity)
      renderChart()
    })
    es.addEventListener('status', (e) => {
      render(JSON.parse(/** @type {MessageEvent} */ (e).data))
      connection('live', 'live')
    })
    es.addEventListener('failure', (e) => {
      failing = true
      connection(`agent unreachable: ${JSON.parse(/** @type {MessageEvent} */ (e).data).message}`, 'bad')
    })
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) poll()
      else connection('reconnecting…', 'bad')
    })
  }

  let resizing = 0
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizing)
    resizing = requestAnimationFrame(renderChart)
  })
  setInterval(() => {
    if (!failing && lastUpdate > 0 && Date.now() - lastUpdate > STALE_MS) connection(`no update for ${duration(Date.now() - lastUpdate)}`, 'bad')
  }, 1000)
  renderChart()
  live()
})()
