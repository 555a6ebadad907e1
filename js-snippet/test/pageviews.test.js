// Pageviews: the first one, SPA navigations, hash mode, back-forward cache, 404 pages and the
// identity hand-off (_odn) from tracked email links.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { T0, next, open } from './harness.js'

test('the first pageview carries site, url, referrer, ids and time', () => {
  const page = open({ url: 'https://shop.example/products?x=1#top', referrer: 'https://search.example/q' })
  const [view] = page.sent()
  assert.equal(page.beacons.length, 1)
  assert.equal(view.name, 'pageview')
  assert.equal(view.site, 'site-1')
  assert.equal(view.url, 'https://shop.example/products?x=1', 'without hash mode the hash is not part of the URL')
  assert.equal(view.referrer, 'https://search.example/q')
  assert.equal(view.ts, T0)
  assert.match(view.visitor, /^[a-z0-9]{8,}$/)
  assert.match(view.session, /^[a-z0-9]{8,}$/)
  assert.equal(view.odn, undefined)
})

test('the collector is derived from the script src, whatever its path or query', () => {
  const page = open({ attrs: { src: 'https://stats.example/odnos/s.js?v=3' } })
  assert.equal(page.beacons[0].target, 'https://stats.example/odnos/e')
})

test('no data-site: nothing is sent and no API is installed', () => {
  const page = open({ attrs: { 'data-site': null } })
  assert.equal(page.beacons.length, 0)
  assert.equal(page.win.odnos, undefined)
})

test('pushState sends exactly one pageview per URL change', () => {
  const page = open()
  const { history } = page.win
  history.pushState({}, '', '/cart')
  history.pushState({}, '', '/cart') // same URL again
  history.replaceState({ scroll: 1 }, '', '/cart') // routers store state on the same URL
  history.pushState({}, '', '/cart#summary') // only the hash changed: not a new page outside hash mode
  history.replaceState({}, '', '/checkout')
  const views = page.sent().filter((e) => e.name == 'pageview')
  assert.deepEqual(
    views.map((e) => e.url),
    ['https://shop.example/products?x=1', 'https://shop.example/cart', 'https://shop.example/checkout'],
  )
})

test('an SPA pageview carries the previous page as referrer and keeps the page history working', () => {
  const page = open({ referrer: 'https://search.example/' })
  const { history, location } = page.win
  history.pushState({ step: 2 }, '', '/step-2')
  assert.equal(location.pathname, '/step-2')
  assert.deepEqual(history.state, { step: 2 })
  const views = page.sent().filter((e) => e.name == 'pageview')
  assert.equal(views[0].referrer, 'https://search.example/')
  assert.equal(views[1].referrer, 'https://shop.example/products?x=1')
})

test("the page's own history errors still reach the page, unchanged", () => {
  const page = open()
  assert.throws(() => page.win.history.pushState({}, '', 'https://elsewhere.example/'), { name: 'SecurityError' })
  assert.equal(page.sent().length, 1)
})

test('back and forward (popstate) count as pageviews', async () => {
  const page = open()
  page.win.history.pushState({}, '', '/next')
  const popped = next(page.win, 'popstate')
  page.win.history.back()
  await popped
  const urls = page.sent().filter((e) => e.name == 'pageview').map((e) => e.url)
  assert.deepEqual(urls, ['https://shop.example/products?x=1', 'https://shop.example/next', 'https://shop.example/products?x=1'])
})

test('hash mode: a hash change is a new page and the hash is part of the URL', async () => {
  const page = open({ url: 'https://app.example/#/inbox', attrs: { 'data-hash': '' } })
  const changed = next(page.win, 'hashchange')
  page.win.location.hash = '#/settings' // fires popstate, then hashchange: still one pageview
  await changed
  const urls = page.sent().filter((e) => e.name == 'pageview').map((e) => e.url)
  assert.deepEqual(urls, ['https://app.example/#/inbox', 'https://app.example/#/settings'])
})

test('hash mode: a hashchange alone (no popstate) is enough', () => {
  const page = open({ url: 'https://app.example/#/inbox', attrs: { 'data-hash': '' } })
  // A router holding the unwrapped method changes the hash without any event of its own.
  page.win.History.prototype.replaceState.call(page.win.history, null, '', '#/settings')
  page.win.dispatchEvent(new page.win.HashChangeEvent('hashchange'))
  const urls = page.sent().filter((e) => e.name == 'pageview').map((e) => e.url)
  assert.deepEqual(urls, ['https://app.example/#/inbox', 'https://app.example/#/settings'])
})

test('without hash mode a hash change is not a pageview', async () => {
  const page = open({ url: 'https://app.example/#/inbox' })
  const changed = next(page.win, 'hashchange')
  page.win.location.hash = '#/settings'
  await changed
  assert.deepEqual(page.names(), ['pageview'])
})

test('a page restored from the back-forward cache is counted again; a normal pageshow is not', () => {
  const page = open({ referrer: 'https://search.example/' })
  page.pageshow(false)
  assert.deepEqual(page.names(), ['pageview'])
  page.pagehide(true)
  page.pageshow(true)
  const views = page.sent().filter((e) => e.name == 'pageview')
  assert.equal(views.length, 2)
  assert.equal(views[1].url, 'https://shop.example/products?x=1')
  assert.equal(views[1].referrer, 'https://search.example/')
})

test('data-404 sends a 404 event after the pageview', () => {
  const page = open({ url: 'https://shop.example/missing', attrs: { 'data-404': '' } })
  const [view, missing] = page.sent()
  assert.equal(view.name, 'pageview')
  assert.equal(missing.name, '404')
  assert.equal(missing.url, 'https://shop.example/missing')
  assert.equal(missing.session, view.session)
})

test('_odn is removed from the address bar, other parameters and the hash kept, and sent once', () => {
  const page = open({ url: 'https://shop.example/offer?utm_source=mail&_odn=tok.en-_1&ref=a#details' })
  assert.equal(page.win.location.href, 'https://shop.example/offer?utm_source=mail&ref=a#details')
  const [view] = page.sent()
  assert.equal(view.odn, 'tok.en-_1')
  assert.equal(view.url, 'https://shop.example/offer?utm_source=mail&ref=a')
  assert.doesNotMatch(JSON.stringify(view), /_odn/)
  page.win.history.pushState({}, '', '/next')
  const next = page.sent().at(-1)
  assert.equal(next.name, 'pageview')
  assert.equal(next.odn, undefined, 'only the landing pageview carries the token')
})

test('_odn as the only parameter leaves no empty "?" behind', () => {
  const page = open({ url: 'https://shop.example/?_odn=abc' })
  assert.equal(page.win.location.href, 'https://shop.example/')
  assert.equal(page.sent()[0].odn, 'abc')
  assert.equal(page.sent()[0].url, 'https://shop.example/')
})

test('removing _odn keeps history.state and does not add a history entry', () => {
  const page = open({
    url: 'https://shop.example/a?_odn=abc',
    before(win) {
      win.history.replaceState({ kept: true }, '')
    },
  })
  assert.deepEqual(page.win.history.state, { kept: true })
  assert.equal(page.win.history.length, 1)
})
