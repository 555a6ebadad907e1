// The tracker factory: reads the script tag's data-* configuration, decides whether anything may
// be sent, and wires pageviews (SPA included), engagement, link clicks and the public API.
// It takes window, script element and clock as arguments so tests can run it on a fake page.
// One closure rather than more modules: each module boundary costs bytes in the bundle, and
// size comes first (see README).

import { downloadTypes, linkKind } from './links.js'
import { safe } from './util.js'

export function start(win, script, now) {
  const doc = win.document
  const nav = win.navigator
  const loc = win.location
  const hist = win.history
  const data = script.dataset // data-allow-local is data.allowLocal
  const site = data.site
  const stub = win.odnos
  // No site id, or the tag was pasted twice (the API is already ours): do nothing.
  if (!site || (stub && stub.track)) return

  const on = (target, type, f, options) => target.addEventListener(type, safe(f), options)
  // The collector is wherever s.js came from: https://c.example/s.js posts to https://c.example/e.
  const endpoint = new URL('e', script.src) // both transports take a URL object
  const hashMode = 'hash' in data
  const downloads = downloadTypes(data.downloads)
  // Blocked for the whole page load: a developer's machine or an automated browser (unless the
  // site allows them; an empty host name is a file: page), or a visitor asking not to be
  // tracked (when the site honours it).
  const blocked =
    (!('allowLocal' in data) && (nav.webdriver || /^(localhost|127\..+|\[::1])?$/.test(loc.hostname))) ||
    ('respectDnt' in data && (nav.doNotTrack == '1' || nav.globalPrivacyControl))
  // First-party visitor and session ids in localStorage (odnos_vid, odnos_sid), read and written
  // as Storage's named properties, shorter than getItem/setItem and equivalent for these keys.
  // The session is stored as "id.lastActivity"; each call counts as activity, and after 30
  // minutes without any a new session id is minted. Ids are only read or written when they may
  // be sent, so a blocked or cookieless visitor leaves nothing in storage; without usable
  // storage (it throws), events go without ids.
  const random = () => Math.random().toString(36).slice(2) + now().toString(36)
  const who =
    blocked || 'cookieless' in data
      ? () => {}
      : safe(() => {
          const store = win.localStorage
          let [session, seen] = (store.odnos_sid || '').split('.')
          if (!session || now() - seen > 30 * 60 * 1000) session = random()
          store.odnos_sid = session + '.' + now()
          return { visitor: store.odnos_vid || (store.odnos_vid = random()), session }
        })
  // The staff opt-out, read per event so that setting it takes effect without a reload.
  const ignored = safe(() => win.localStorage.odnos_ignore == 'true')
  // The page URL as counted: the hash is part of it only in hash mode.
  const here = () => (hashMode ? loc.href : loc.href.split('#')[0])

  // Sends one event; `ids` defaults to the current visitor/session (refreshing its activity).
  // The body is a string, which both transports label text/plain;charset=UTF-8 themselves: a
  // CORS-safelisted type, so no preflight. Both survive the page being unloaded; sendBeacon is
  // missing or refuses (returns false) in some setups, then fetch with keepalive takes over.
  const send = safe((name, fields, ids = who()) => {
    if (blocked || ignored()) return
    const body = JSON.stringify(Object.assign({ site, name, url: here(), ts: now() }, ids, fields))
    if (!(nav.sendBeacon && nav.sendBeacon(endpoint, body))) {
      // A rejected promise would reach the page's unhandledrejection handlers: swallow it.
      win.fetch(endpoint, { method: 'POST', body, keepalive: true }).catch(() => {})
    }
  })

  // Identity hand-off from a tracked email link: take `_odn` out of the address bar (other
  // parameters and the hash kept) before anything reads the URL; the first pageview sends it.
  const address = new URL(loc) // a Location stringifies to its href
  const params = address.searchParams
  let odn = params.get('_odn') || undefined
  if (odn) {
    params.delete('_odn')
    hist.replaceState(hist.state, '', address)
  }

  // Engagement of the current page. Time counts only while the tab is visible and the window
  // has focus; document.hasFocus() stays true while the visitor is inside an embedded frame
  // (a video, a form), which is engagement too.
  let engaged // whether the stretch since `since` counts
  let since
  let ms // engaged time not yet reported
  let scroll // maximum scroll depth of the page, in percent
  let sent // whether an engagement was already sent for this page
  let current // URL of the page last counted; falsy before the first pageview of a load
  let pageIds // ids sent with that pageview; its engagement reports under the same ones

  // Closes the running stretch, then decides whether the next one counts. A page can gain focus
  // without a focus event (seen in Chromium): a stretch closed by leaving (no event) also counts
  // when the page is focused and visible at that moment.
  const update = (event) => {
    const t = now()
    const now_engaged = doc.hasFocus() && doc.visibilityState == 'visible'
    if (engaged || (now_engaged && !event)) ms += t - since
    since = t
    engaged = now_engaged
  }
  // Bottom of the viewport as a share of the document; a page shorter than the window is fully
  // seen (100). `|| 0` turns the 0/0 of an empty document into 0, not NaN.
  const depth = () => {
    const seen = (win.scrollY + win.innerHeight) / doc.documentElement.scrollHeight
    scroll = Math.max(scroll, Math.min(100, Math.round(seen * 100)) || 0)
  }
  // Reports the engagement of the page being left: time as a delta since the last report,
  // scroll as the page's maximum so far; never a second report of zero time. It keeps the
  // pageview's ids and does not count as session activity, so a tab left open for hours
  // cannot start a session of its own.
  const leave = () => {
    update()
    depth()
    if (current && (ms || !sent)) {
      send('engagement', { url: current, engaged_ms: ms, scroll }, pageIds)
      ms = 0
      sent = 1
    }
  }
  on(win, 'focus', update)
  on(win, 'blur', update)
  on(win, 'scroll', depth) // scroll events cannot be cancelled: no need to mark it passive
  on(doc, 'visibilitychange', (e) => (doc.visibilityState == 'hidden' ? leave : update)(e))
  // A navigation fires pagehide while the page is still "visible", then visibilitychange: stop
  // the stretch here, or that event would report the few milliseconds in between a second time.
  on(win, 'pagehide', () => {
    leave()
    engaged = 0
  })

  // Counts a pageview when the URL changed, after reporting the engagement of the previous page.
  // The first one of a load carries document.referrer; an SPA navigation carries the previous
  // page's URL as referrer.
  const page = safe(() => {
    const url = here()
    if (url == current) return
    leave() // also restarts the engaged-time stretch
    const referrer = current || doc.referrer
    current = url
    sent = ms = scroll = 0
    send('pageview', { referrer, odn }, (pageIds = who()))
    odn = undefined
  })

  // SPA navigations: wrap the history methods (the page's own call runs unguarded, so its errors
  // stay its own), plus back/forward and, in hash mode, fragment changes.
  for (const method of ['pushState', 'replaceState']) {
    const original = hist[method]
    hist[method] = (...args) => {
      const result = original.apply(hist, args)
      page()
      return result
    }
  }
  on(win, 'popstate', page)
  if (hashMode) on(win, 'hashchange', page)
  // Restored from the back-forward cache: no load event, yet a new view of the page.
  on(win, 'pageshow', (e) => {
    if (e.persisted) {
      current = 0
      page()
    }
  })

  // Link clicks, in the capture phase so a page that stops propagation cannot hide them;
  // auxclick adds the middle button (1); the right button (2) only opens a menu.
  const click = (e) => {
    const link = e.button < 2 && e.target.closest('a[href]')
    const kind = link && linkKind(link, loc.host, downloads)
    if (kind) send(kind, { props: { url: link.href } })
  }
  on(doc, 'click', click, 1)
  on(doc, 'auxclick', click, 1)

  page()
  // The site marks its not-found page with data-404 on the script tag.
  if (404 in data) send('404')

  // The public API: odnos('track', ...) and odnos.track(...) alike.
  const api = safe((command, ...args) => api[command](...args))
  // Props become strings (clipped to the collector's 512 characters), at most 30 keys.
  api.track = safe((name, props) => {
    const clean = {}
    for (const key of Object.keys(props || {}).slice(0, 30)) clean[key] = ('' + props[key]).slice(0, 512)
    send('' + name, props && { props: clean })
  })
  api.identify = (email, hash) => send('identify', { email, hash })
  // Calls made through the stub before this script loaded are replayed after the pageview.
  win.odnos = api
  for (const args of (stub && stub.q) || []) api(...args)
}
