// The public API: odnos.track, odnos.identify, the command form odnos('track', ...), and the
// queue of calls made before the script loaded.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { open } from './harness.js'

// The stub a site puts before the script tag, exactly as the README gives it.
const stub = (calls) => (win) => {
  win.eval('window.odnos = window.odnos || function () { (odnos.q = odnos.q || []).push(arguments) }')
  calls(win.odnos)
}

test('calls queued before load are replayed in order, after the pageview', () => {
  const page = open({
    before: stub((odnos) => {
      odnos('track', 'signup', { plan: 'pro' })
      odnos('identify', 'Ann@Example.com', 'a1b2')
    }),
  })
  const [view, signup, identify] = page.sent()
  assert.equal(view.name, 'pageview')
  assert.deepEqual([signup.name, signup.props], ['signup', { plan: 'pro' }])
  assert.deepEqual([identify.name, identify.email, identify.hash], ['identify', 'Ann@Example.com', 'a1b2'])
  assert.equal(identify.session, view.session)
})

test('after load, odnos.track and odnos("track") both work', () => {
  const page = open({ before: stub(() => {}) })
  page.win.odnos.track('a', { k: 'v' })
  page.win.odnos('track', 'b')
  page.win.odnos.identify('x@y.example', 'ff00')
  assert.deepEqual(page.names(), ['pageview', 'a', 'b', 'identify'])
  assert.equal(page.sent()[2].props, undefined, 'no props given, none sent')
})

test('props values are stringified, at most 30 keys, values clipped to 512 characters', () => {
  const page = open()
  const props = { n: 3, yes: true, none: null, obj: { a: 1 }, long: 'x'.repeat(600) }
  for (let i = 0; i < 40; i++) props['k' + i] = i
  page.win.odnos.track('big', props)
  const sent = page.sent()[1].props
  assert.equal(Object.keys(sent).length, 30)
  assert.deepEqual([sent.n, sent.yes, sent.none, sent.obj], ['3', 'true', 'null', '[object Object]'])
  assert.equal(sent.long.length, 512)
})

test('the event name is sent as a string', () => {
  const page = open()
  page.win.odnos.track(42)
  assert.equal(page.sent()[1].name, '42')
})

test('bad calls are swallowed: unknown commands, unprintable props, circular values', () => {
  const page = open()
  const { odnos } = page.win
  assert.equal(odnos('nonsense', 1), undefined)
  assert.equal(odnos(), undefined)
  assert.equal(odnos.track('x', { s: Symbol('no') }), undefined)
  const loop = {}
  loop.self = loop
  assert.equal(odnos.identify(loop, 'h'), undefined)
  assert.deepEqual(page.names(), ['pageview'])
})

test('a tag pasted twice tracks once', () => {
  const page = open()
  const second = page.doc.createElement('script')
  second.setAttribute('data-site', 'site-1')
  second.setAttribute('src', 'https://collector.example/s.js')
  const api = page.win.odnos
  // Run the factory again on the same window, as a second copy of the file would.
  return import('../src/tracker.js').then(({ start }) => {
    start(page.win, second, () => page.state.now)
    assert.equal(page.win.odnos, api)
    page.win.history.pushState({}, '', '/next')
    assert.deepEqual(page.names(), ['pageview', 'engagement', 'pageview'])
  })
})
