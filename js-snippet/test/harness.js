// A fake page for the tracker: a jsdom window with the snippet's script tag, a clock the test
// moves by hand, a recording sendBeacon, and switches for visibility, focus and scrolling.
// Every beacon is checked against the collector's schema (schemas/event.schema.json), and
// every error the page would have seen is collected so tests can assert there was none.

import Ajv from 'ajv'
import Ajv2020 from 'ajv/dist/2020.js'
import { JSDOM, VirtualConsole } from 'jsdom'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { afterEach } from 'node:test'
import { start } from '../src/tracker.js'

const schema = JSON.parse(readFileSync(new URL('../../schemas/event.schema.json', import.meta.url)))
// The schema's owner picks its draft; each draft has its own Ajv class.
const Validator = String(schema.$schema).includes('2020-12') ? Ajv2020 : Ajv
const validate = new Validator({ strict: false }).compile(schema)

export const COLLECTOR = 'https://collector.example'
export const T0 = 1_700_000_000_000

// After every test: the page saw no error from the snippet, and its window is closed.
const pages = []
afterEach(() => {
  for (const page of pages.splice(0)) {
    page.win.close()
    assert.deepEqual(page.errors, [], 'the page saw an error')
  }
})

/**
 * Resolves when `win` next fires `type`: jsdom queues history traversals and hash changes as
 * tasks. The tracker's listeners were added before this one, so they have run by then.
 */
export const next = (win, type) => new Promise((resolve) => win.addEventListener(type, resolve, { once: true }))

/**
 * Opens a page and starts the tracker on it.
 * - url: the page address; referrer: document.referrer
 * - attrs: extra attributes of the script tag (null removes one: {'data-site': null})
 * - storage: localStorage entries present before the script runs
 * - before(win): runs before the tracker starts (queue stub, navigator flags, transports)
 * - beacon: false to leave navigator.sendBeacon undefined
 * - initial: starting values of the switches below (visible, focused, scrollY, ...)
 */
export function open({ url = 'https://shop.example/products?x=1', referrer, attrs = {}, storage = {}, before, beacon = true, initial } = {}) {
  const errors = []
  const virtualConsole = new VirtualConsole()
  virtualConsole.on('jsdomError', (e) => errors.push(e))
  const dom = new JSDOM('<!doctype html><html><head></head><body><main></main></body></html>', {
    url,
    referrer,
    virtualConsole,
    runScripts: 'outside-only', // win.eval, for the queue stub a site pastes
  })
  const win = dom.window
  const doc = win.document
  win.addEventListener('error', (e) => errors.push(e.error || e.message))
  win.addEventListener('unhandledrejection', (e) => errors.push(e.reason))

  const state = { now: T0, visible: true, focused: true, scrollY: 0, innerHeight: 1000, scrollHeight: 4000, ...initial }
  Object.defineProperty(doc, 'visibilityState', { get: () => (state.visible ? 'visible' : 'hidden') })
  doc.hasFocus = () => state.focused
  Object.defineProperty(win, 'scrollY', { get: () => state.scrollY })
  Object.defineProperty(win, 'innerHeight', { get: () => state.innerHeight })
  Object.defineProperty(doc.documentElement, 'scrollHeight', { get: () => state.scrollHeight })

  const beacons = []
  if (beacon) {
    Object.defineProperty(win.navigator, 'sendBeacon', {
      configurable: true,
      writable: true,
      value: (target, body) => {
        beacons.push({ target: String(target), body })
        return true
      },
    })
  }
  for (const [key, value] of Object.entries(storage)) win.localStorage.setItem(key, value)

  const script = doc.createElement('script')
  const all = { 'data-site': 'site-1', src: COLLECTOR + '/s.js', ...attrs }
  for (const [name, value] of Object.entries(all)) if (value != null) script.setAttribute(name, value)
  doc.head.append(script)

  if (before) before(win)
  start(win, script, () => state.now)

  const fire = (target, type, init) => target.dispatchEvent(new win.Event(type, init))
  const page = {
    win,
    doc,
    state,
    errors,
    beacons,
    /** The events sent so far, each checked against the schema and the endpoint. */
    sent() {
      return beacons.map(({ target, body }) => {
        assert.equal(target, COLLECTOR + '/e')
        const event = JSON.parse(body)
        assert.ok(validate(event), JSON.stringify(validate.errors) + ' in ' + body)
        return event
      })
    },
    names() {
      return this.sent().map((e) => e.name)
    },
    /** Forgets what was sent so far. */
    clear() {
      beacons.length = 0
    },
    advance(ms) {
      state.now += ms
    },
    hide() {
      state.visible = false
      fire(doc, 'visibilitychange')
    },
    show() {
      state.visible = true
      fire(doc, 'visibilitychange')
    },
    blur() {
      state.focused = false
      fire(win, 'blur')
    },
    focus() {
      state.focused = true
      fire(win, 'focus')
    },
    scrollTo(y) {
      state.scrollY = y
      fire(win, 'scroll')
    },
    pagehide(persisted = false) {
      win.dispatchEvent(new win.PageTransitionEvent('pagehide', { persisted }))
    },
    pageshow(persisted) {
      win.dispatchEvent(new win.PageTransitionEvent('pageshow', { persisted }))
    },
    /** Adds a link to the page and clicks it (navigation itself is prevented, jsdom has none). */
    click(href, init = {}, type = 'click') {
      const link = doc.createElement('a')
      link.setAttribute('href', href)
      link.innerHTML = '<span>label</span>'
      doc.body.append(link)
      win.addEventListener(type, (e) => e.preventDefault(), { once: true })
      link.firstChild.dispatchEvent(new win.MouseEvent(type, { bubbles: true, cancelable: true, ...init }))
      return link
    },
  }
  pages.push(page)
  return page
}
