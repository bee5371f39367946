// Start-up requests fired while the map library is still downloading and being parsed:
// a classic script that runs first, before maplibre-gl.js and the page's modules. app.js
// takes the answers through api.js `early()` (same token, same error handling), once each.
(function earlyRequests() {
  var token = sessionStorage.getItem('gis-service.token');
  var paths = ['/web/config.json'];
  if (token) {
    paths.push('/me', '/layers', '/schemes', '/divisions',
      '/styles/planner.json', '/styles/survey.json', '/styles/commander.json');
  }
  var pending = {};
  paths.forEach(function (path) {
    var headers = { Accept: 'application/json' };
    if (token && path !== '/web/config.json') headers.Authorization = 'Bearer ' + token;
    var answer = fetch(path, { headers: headers });
    answer.catch(function () { /* handled by whoever takes it */ });
    pending[path] = answer;
  });
  window.__early = { token: token, pending: pending };
}());
