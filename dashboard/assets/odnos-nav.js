// The burger on a phone: it opens the navigation panel, and choosing a page closes it again.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  odnos: Object.assign({}, (window.dash_clientside || {}).odnos, {
    toggleNav: function (opened, pathname, navbar) {
      var triggered = window.dash_clientside.callback_context.triggered.map(function (t) { return t.prop_id; });
      var open = triggered.indexOf("nav-burger.opened") >= 0 ? Boolean(opened) : false;
      return [Object.assign({}, navbar, { collapsed: { mobile: !open } }), open];
    },
  }),
});
